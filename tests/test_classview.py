"""ClassView fed by the real pipeline on real clips (kernel side), and classroom() on a video file."""

from __future__ import annotations

import dataclasses
import datetime
import gc
import json
import os
import time
import tracemalloc
from collections.abc import Iterator

import av
import numpy as np
import pytest
from conftest import CLIPS, video_frames

from emowidgets import classroom
from emowidgets.adapter import BaseHead
from emowidgets.adapter_fit import fit_adapter
from emowidgets.classadapters import ClassAdapters
from emowidgets.classlog import read_log
from emowidgets.classview import ClassView, valence
from emowidgets.errors import VideoFileError
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import EMOTIONS, FrameResult


@pytest.fixture(scope="module")
def gallery_results():
    """The 2x2 gallery clip, every 5th frame (0.2 s apart, 4 faces), then one empty frame."""
    frames = video_frames(CLIPS / "multi_face.mp4", every=5)
    with Pipeline.create_from_options(warmup=False) as pipeline:
        results = [pipeline.process_array(f, seq=i, timestamp_ms=i * 200) for i, f in enumerate(frames)]
        return results, pipeline.process_array(np.zeros_like(frames[0]), len(frames), 10_000)


def test_valence_range():
    happy, sad = np.eye(len(EMOTIONS))[EMOTIONS.index("happy")], np.eye(len(EMOTIONS))[EMOTIONS.index("sad")]
    assert valence(happy) == 1.0 and valence(sad) == -1.0 and valence(np.eye(7)[6]) == 0.0


def test_tiles_chart_and_absence(gallery_results):
    results, empty = gallery_results
    view = ClassView()
    for i, r in enumerate(results):
        view.update(r, now=100 + i * 0.2)
    assert len(view.faces) == 4 and all(f["present"] for f in view.faces)
    woman = int(results[-1].track_ids[np.argmin(results[-1].boxes[:, 0] - results[-1].boxes[:, 1])])
    tile = next(f for f in view.faces if f["id"] == woman)
    assert EMOTIONS[int(np.argmax(tile["probs"]))] == "happy"  # she smiles from about 2 s on
    assert 8 <= len(tile["spark"]) <= 11 and all(-1 <= v <= 1 and -60 <= t <= 0 for t, v in tile["spark"])
    assert 8 <= len(view.history) <= 10  # one point a second, from the first tile on (after min_frames)
    assert all(len(p) == 9 and p[-1] == 4 and sum(p[1:8]) == pytest.approx(1, abs=0.01) for p in view.history)
    assert view.attention == []
    view.update(empty, now=100 + 10 + view.absent_seconds + 1)
    assert not any(f["present"] for f in view.faces)
    assert sorted(a["id"] for a in view.attention) == sorted(f["id"] for f in view.faces)
    assert all(a["reason"].startswith("absent") for a in view.attention)
    assert view.history[-1][-1] == 0
    state = json.dumps({k: getattr(view, k) for k in ("faces", "history", "attention", "names")})
    assert len(state) < 20_000  # numbers only, no pixels


def test_sustained_negative_needs_attention(pipeline: Pipeline):
    """A student seen at ease, then crying, is flagged when crying (measured against their own resting face)."""
    frames = video_frames(CLIPS / "sad_to_happy.mp4", every=6)  # 0.25 s apart; crying at 0-2 s, smiling from 6 s
    view = ClassView(negative_seconds=2.0, resting_seconds=3.0)
    lesson = [*frames[24:40], *frames[:10]]  # 6-10 s (at ease, smiling), then the crying
    flagged_at = []
    for i, f in enumerate(lesson):
        view.update(pipeline.process_array(f, seq=i, timestamp_ms=i * 250), now=i * 0.25)
        if any(a["reason"].startswith("negative") for a in view.attention):
            flagged_at.append(i)
    assert view.faces and view.faces[0]["learning"] == 1.0 and view.faces[0]["rise"] >= 0.25
    assert flagged_at and min(flagged_at) >= 16  # never while at ease; once crying has lasted
    assert "own resting face" in view.attention_rule and "20" not in view.attention_rule  # says 2 s, not 20


def test_talking_neutral_students_are_not_flagged(gallery_results):
    """The 2x2 clip's four people talk, listen and smile: none needs attention, although a fixed threshold on
    the negative score (the rule before) flags at least one of them."""
    results, _ = gallery_results
    view = ClassView(max_rate=100)  # the default rule: 30 s to learn the resting face, 20 s window
    fixed_rule_flags = 0
    for i in range(8 * len(results)):  # the 10 s clip's results replayed as 80 s of lesson
        view.update(results[i % len(results)], now=i * 0.2)
        assert not [a for a in view.attention if a["reason"].startswith("negative")]
        fixed_rule_flags += sum(f["present"] and sum(f["probs"][k] for k in (0, 1, 2, 4)) >= 0.5
                                for f in view.faces)
    assert all(f["learning"] == 1.0 for f in view.faces if f["present"])
    assert fixed_rule_flags > 0


def test_names_and_logging(tmp_path, gallery_results):
    results, _ = gallery_results
    view = ClassView(log_path=str(tmp_path / "log.parquet"))
    first = int(results[0].track_ids[0])
    view.names = {str(first): "Ana"}
    view.logging = True
    for i, r in enumerate(results[:20]):
        view.update(r, now=i * 0.25)
    view.logging = False
    log = read_log(tmp_path / "log.parquet")
    assert 4 * 4 <= len(log["track_id"]) <= 4 * 6  # one logged frame per second
    assert set(log["name"][log["track_id"] == first]) == {"Ana"}
    view.close()


@pytest.mark.parametrize("auto_calibrate", [False, True])
def test_classroom_on_a_video_file_ends_cleanly(auto_calibrate):
    room = classroom(CLIPS / "single_face_short.mp4", model="fast", auto_calibrate=auto_calibrate)
    try:
        assert room.camera is None and room.video is not None
        assert (room.pipeline.autocalib is not None) == auto_calibrate
        deadline = time.monotonic() + 60
        while room.view.status != "video ended" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert room.view.status == "video ended"
        room.view.refresh()
        assert len(room.view.faces) == 1 and room.view.history
        if auto_calibrate:  # each frame the face was classified on went into its resting face (30-frame window)
            tid = room.view.faces[0]["id"]
            seen = room.pipeline.stats.processed  # real-time playback may drop frames on a busy machine
            assert seen > 0 and 0 < room.pipeline.autocalib.progress(tid) <= min(1.0, seen / 30)
    finally:
        room.close()


@pytest.mark.parametrize(("typed", "kept"), [("auto", "auto"), (" None ", "none"), ("7x7", "7x7"),
                                            ("7\N{MULTIPLICATION SIGN}7", "7x7"), ("5 X 4", "5x4"),
                                            ("10x10", "10x10"), ("1x1", "1x1")])
def test_gallery_grid_choices(typed, kept):
    view = ClassView()
    view.grid = typed
    assert view.grid == kept and view.notice == ""


@pytest.mark.parametrize("typed", ["11x11", "0x3", "7x", "3x4x5", "seven", "", "7,7"])
def test_refused_gallery_grid_keeps_the_old_one_and_says_why(typed):
    view = ClassView(grid="6x6")
    view.grid = typed
    assert view.grid == "6x6"
    assert view.notice.startswith(f"gallery grid {typed!r} not understood"), view.notice
    view.grid = "auto"  # a good choice clears that notice
    assert view.grid == "auto" and view.notice == ""


def test_gallery_grid_typed_in_the_page_is_checked_too():
    """The page's changes arrive through set_state, where traitlets validates late (self.grid already holds the
    proposal inside the validator)."""
    view = ClassView()
    view.set_state({"grid": "12x12"})
    assert view.grid == "auto" and "12x12" in view.notice
    view.set_state({"grid": "7\N{MULTIPLICATION SIGN}7"})
    assert view.grid == "7x7" and view.notice == ""
    view.set_state({"grid": "nope"})
    assert view.grid == "7x7"


def test_classroom_passes_the_grid_choice_to_the_pipeline():
    room = classroom(CLIPS / "single_face_short.mp4", model="fast")
    try:
        room.view.grid = "7\N{MULTIPLICATION SIGN}7"
        assert room.pipeline.grid == "7x7"
        room.view.grid = "12x12"  # refused by the view: the pipeline keeps 7x7
        assert room.pipeline.grid == "7x7" and room.view.notice
        room.view.grid = "none"
        assert room.pipeline.grid == "none"
    finally:
        room.close()


def test_a_video_without_faces_ends_saying_so(tmp_path):
    path = tmp_path / "empty_room.mp4"
    with av.open(str(path), "w") as out:  # 1.5 s of a real, faceless picture: the clip's top-left corner
        stream = out.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        corner = np.ascontiguousarray(video_frames(CLIPS / "multi_face.mp4", every=1000)[0][:96, :160])
        for _ in range(30):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(corner, format="rgb24")))
        out.mux(stream.encode())
    room = classroom(path)
    try:
        deadline = time.monotonic() + 60
        while not room.view.status.startswith("video ended") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert room.view.status == "video ended: no faces found in it"
    finally:
        room.close()


def test_classroom_names_another_view_on_this_computer(tmp_path, monkeypatch):
    monkeypatch.setattr("emowidgets.startup.running_dir", lambda: tmp_path)
    (tmp_path / f"{os.getpid()}-other").touch()  # a live view in this very kernel
    room = classroom(CLIPS / "single_face_short.mp4", model="fast")
    try:
        deadline = time.monotonic() + 30
        while not room.view.others and time.monotonic() < deadline:
            time.sleep(0.1)
        assert room.view.others.startswith("another live view runs on this computer: they share its processor")
        (tmp_path / f"{os.getpid()}-other").unlink()  # that view closed: the warning goes at the next look
        while room.view.others and time.monotonic() < deadline + 10:
            time.sleep(0.2)
        assert room.view.others == "" and room.view.notice == ""
    finally:
        room.close()
    assert list(tmp_path.iterdir()) == []


def test_classroom_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(VideoFileError, match="no such video file"):
        classroom(tmp_path / "lesson.mp4")


def subset(result: FrameResult, rows: np.ndarray, ids: np.ndarray | None = None) -> FrameResult:
    """The faces ``rows`` of a real result (repeats allowed), optionally under other track ids."""
    picked = {k: getattr(result, k)[rows] for k in ("boxes", "scores", "probs", "raw_probs", "embeddings")}
    return dataclasses.replace(result, **picked, track_ids=result.track_ids[rows] if ids is None else ids)


def state_bytes(view: ClassView) -> int:
    """Size of the view's synced state as JSON, without the constant JS/CSS."""
    return len(json.dumps({k: v for k, v in view.get_state().items() if k not in ("_esm", "_css")}))


def lesson(view: ClassView, results: list[FrameResult], minutes: float, fps: float = 1.0, seats: int = 25,
           seed: int = 0) -> Iterator[tuple[float, int]]:
    """Drive ``view`` through a lesson of ``seats`` students at ``fps``, yielding ``(t_s, ids used)`` after each
    frame. Churn: every 5 minutes each student present leaves with probability 0.3 for 1-10 minutes; on return
    the tracker re-identifies them (same track id) half of the time, else they get a new id and the teacher
    names the new tile again. The faces are real pipeline results (the 2x2 gallery clip's faces, cycled)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, seats + 1)
    back_at = np.zeros(seats)  # seconds; 0: present
    next_id = seats + 1
    view.names = {str(i): f"student {i}" for i in ids[:10]}
    for k in range(int(minutes * 60 * fps) + 1):
        t = k / fps
        if k and k % int(300 * fps) == 0:
            leaving = (back_at == 0) & (rng.random(seats) < 0.3)
            back_at[leaving] = t + rng.uniform(60, 600, leaving.sum())
        for s in np.flatnonzero((back_at > 0) & (back_at <= t)):
            back_at[s] = 0
            if rng.random() < 0.5:  # a re-identification miss: a new id, named again by the teacher
                name = view.names.get(str(ids[s]))
                ids[s], next_id = next_id, next_id + 1
                if name:
                    view.names = {**view.names, str(ids[s]): name}
        here = np.flatnonzero(back_at == 0)
        result = results[k % len(results)]
        view.update(subset(result, here % len(result.track_ids), ids[here]), now=t)
        yield t, next_id - 1


def figures(view: ClassView, t: float, ids: int) -> dict[str, int]:
    gc.collect()  # what the view holds, not garbage the collector has not reached yet
    held = view.held
    return {"minute": round(t / 60), "ids": ids, "faces": held["faces"], "tiles": len(view.faces),
            "left": held["left"], "names": len(view.names), "attention": len(view.attention),
            "series": held["points"],
            "state_bytes": state_bytes(view), "traced_bytes": tracemalloc.get_traced_memory()[0]}


@pytest.mark.slow
def test_two_hour_lesson_with_churn_stays_bounded(gallery_results):
    """25 students, 1 frame a second for 2 hours; the chart window is 1 minute to keep the run short (the
    chart's own bound is its window). Memory is traced from minute 30 on: what is held at minute 120 is
    compared with what was held at minute 60."""
    results, _ = gallery_results
    view = ClassView(max_rate=0.2, window_minutes=1.0, max_left=30)
    marks = []
    try:
        for t, ids in lesson(view, results, minutes=120):
            if t == 30 * 60:
                tracemalloc.start()
            if t in (20 * 60, 60 * 60, 120 * 60):
                marks.append(figures(view, t, ids))
    finally:
        tracemalloc.stop()
    print(json.dumps(marks))
    early, hour, late = marks
    assert late["ids"] > 3 * 25  # the churn: without retirement there would be a tile per id
    for f in marks:
        assert f["faces"] <= 2 * 25 and f["tiles"] <= 2 * 25 and f["left"] <= 30 and f["names"] <= 10 + 30
        assert f["attention"] <= 25  # only faces absent less than the retention time can be listed as absent
        assert f["series"] <= f["faces"] * (60 + view.negative_seconds + 2)  # one point a second per series
    assert late["state_bytes"] < 1.25 * early["state_bytes"]
    assert late["traced_bytes"] < 1.5 * hour["traced_bytes"] + 50_000


def test_retired_student_comes_back_with_name_and_adapter(pipeline: Pipeline, gallery_results):
    results, _ = gallery_results
    view = ClassView(retention_seconds=60)
    adapters = ClassAdapters(pipeline, on_change=lambda adapted, room: view.set_trait("adapted", adapted))
    view.observe(lambda change: adapters.resolve(change["new"]), "names")  # as Classroom wires them
    try:
        woman = int(results[-1].track_ids[np.argmin(results[-1].boxes[:, 0] - results[-1].boxes[:, 1])])
        emb = np.concatenate([r.embeddings for r in results])
        smiling = np.concatenate([(r.track_ids == woman) & (i >= 20) for i, r in enumerate(results)])
        adapter, _ = fit_adapter(emb, smiling.astype(np.int64), ("rest", "smile"),
                                 base=BaseHead.from_classifier(pipeline.classifier))
        for i, r in enumerate(results):
            view.update(r, now=i * 0.2)
        view.names = {str(woman): "Ana"}
        adapters.set_person("Ana", adapter)
        others = [subset(r, np.flatnonzero(r.track_ids != woman)) for r in results]
        for k in range(100):  # 100 s without her: longer than the retention time
            view.update(others[k % len(others)], now=10 + k)
        view.refresh(now=110)
        assert woman not in [f["id"] for f in view.faces] and woman not in [a["id"] for a in view.attention]
        assert [(f["id"], f["name"]) for f in view.left] == [(woman, "Ana")]
        left_at = datetime.datetime.fromtimestamp(view._t0_clock + view._left[woman].last_seen - view._t0)
        assert view.left[0]["left_at"] == f"{left_at:%H:%M}"  # a clock time, not minutes since the start
        view.update(results[-1], now=111)  # the tracker re-identified her: same track id
        view.refresh(now=111)
        assert woman in [f["id"] for f in view.faces] and view.left == []
        assert view.names[str(woman)] == "Ana" and view.adapted[str(woman)] == ["rest", "smile"]
        assert pipeline.head is not None and pipeline.head.people[woman] is adapter
        for k in range(70):  # she leaves again: her time in class counts from her first arrival, at 0 s
            view.update(others[k % len(others)], now=112 + k)
        view.refresh(now=182)
        assert [(f["id"], f["present_s"]) for f in view.left] == [(woman, 111)]
    finally:
        adapters.set_person("Ana", None)
    assert pipeline.head is None

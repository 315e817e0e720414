"""ClassView fed by the real pipeline on real clips (kernel side), and classroom() on a video file."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import CLIPS, video_frames

from emowidgets.classlog import read_log
from emowidgets.classview import ClassView, classroom, valence
from emowidgets.errors import VideoFileError
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import EMOTIONS


@pytest.fixture(scope="module")
def gallery_results(pipeline: Pipeline):
    """The 2x2 gallery clip, every 5th frame (0.2 s apart, 4 faces), then one empty frame."""
    pipeline.tracker.reset()
    frames = video_frames(CLIPS / "multi_face.mp4", every=5)
    results = [pipeline.process_array(f, i, i * 200) for i, f in enumerate(frames)]
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
    pipeline.tracker.reset()
    frames = video_frames(CLIPS / "sad_to_happy.mp4", every=6)  # 0.25 s apart; crying at 0-2 s
    view = ClassView(negative_seconds=2.0, negative_threshold=0.5)
    for i, f in enumerate(frames[:10]):
        view.update(pipeline.process_array(f), now=i * 0.25)
    assert [a["reason"].split()[0] for a in view.attention] == ["negative"]
    for i, f in enumerate(frames[32:48]):  # 8-12 s: smiling
        view.update(pipeline.process_array(f), now=8 + i * 0.25)
    assert view.attention == []


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
        if auto_calibrate:  # every frame of the face went into its resting face, up to the 30-frame window
            tid = room.view.faces[0]["id"]
            seen = room.view._faces[tid].frames  # real-time playback may drop frames on a busy machine
            assert seen > 0 and room.pipeline.autocalib.progress(tid) == pytest.approx(min(1.0, seen / 30))
    finally:
        room.close()


def test_classroom_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(VideoFileError, match="no such video file"):
        classroom(tmp_path / "lesson.mp4")

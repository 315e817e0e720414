"""What the class view's page is told besides scores (kernel side, real pipeline on real clips): no faces found,
camera-off call tiles, and a recording's scaled-down preview frames (never a trait)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import simplejpeg
from conftest import CLIPS, video_frames

from emowidgets import classroom
from emowidgets.classview import NO_FACES_S, ClassView
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import FrameResult
from emowidgets.widgets import TRACK_COLORS, FramePreview, track_color


@pytest.fixture(scope="module")
def gallery() -> Iterator[tuple[list[FrameResult], FrameResult, np.ndarray]]:
    """The 2x2 gallery clip every 5th frame (4 faces), a faceless frame's result, and the last frame; from a
    pipeline of its own (the session's keeps its clock for the tests after these)."""
    frames = video_frames(CLIPS / "multi_face.mp4", every=5)
    with Pipeline.create_from_options(warmup=False) as pipeline:
        results = [pipeline.process_array(f, seq=i, timestamp_ms=i * 200) for i, f in enumerate(frames)]
        blank = np.full_like(frames[0], 90)
        yield results, pipeline.process_array(blank, seq=len(frames), timestamp_ms=10_000), frames[-1]


def in_quadrants(result: FrameResult, rows: np.ndarray | None = None) -> FrameResult:
    """``result`` (its faces ``rows``) laid out as a 2x2 call of its four quadrants plus a fifth, empty tile."""
    w, h = result.width / 2, result.height / 2
    tiles = np.array([[0, 0, w, h], [w, 0, w, h], [0, h, w, h], [w, h, w, h], [0, 0, 1, 1]], np.float32)
    centres = result.boxes[:, :2] + result.boxes[:, 2:] / 2
    tile_of = (centres[:, 0] >= w).astype(np.int64) + 2 * (centres[:, 1] >= h)
    rows = np.arange(len(result.boxes)) if rows is None else rows
    picked = {k: getattr(result, k)[rows] for k in ("boxes", "scores", "track_ids", "probs", "raw_probs",
                                                    "embeddings", "ages_ms")}
    return dataclasses.replace(result, **picked, tiles=tiles, face_tiles=tile_of[rows], grid="2x2",
                               grid_source="set")


def test_no_faces_found_only_while_faceless_frames_arrive(gallery):
    results, blank, _ = gallery
    assert len(blank.track_ids) == 0
    view = ClassView()
    for i in range(8):  # 2 s of faceless frames: not yet
        view.update(blank, now=i * 0.25)
    view.refresh(now=2.0)
    assert not view.no_faces and NO_FACES_S == 3.0
    for i in range(8, 16):
        view.update(blank, now=i * 0.25)
    view.refresh(now=3.9)
    assert view.no_faces and view.faces == []
    view.refresh(now=3.9 + 2.5)  # the frames stopped (the share ended): that is not "no faces"
    assert not view.no_faces
    view.update(results[0], now=7.0)
    view.refresh(now=7.1)
    assert not view.no_faces


def test_camera_off_tiles_are_not_absent_students(gallery):
    results, _, _ = gallery
    view = ClassView()
    for i, r in enumerate(results):
        view.update(in_quadrants(r), now=i * 0.2)
    view.refresh(now=len(results) * 0.2)
    assert len(view.faces) == 4 and not any(f["camera_off"] for f in view.faces)
    assert view.camera_off == [{"tile": 4}]  # the call tile nobody ever sat in
    last = results[-1]
    gone = int(last.track_ids[0])
    t = len(results) * 0.2
    for i in range(10):  # one camera goes off for longer than absent_seconds
        view.update(in_quadrants(last, np.arange(1, len(last.track_ids))), now=t + i * 4.0)
    view.refresh(now=t + 40)
    tile = next(f for f in view.faces if f["id"] == gone)
    assert tile["camera_off"] and not tile["present"]
    assert gone not in [a["id"] for a in view.attention]  # a camera off is not "absent 40 s"
    assert view.camera_off == [{"tile": 4}]  # its call tile is shown by its own (named) tile, not twice


def test_track_colors_are_stable_and_shared():
    assert [track_color(i) for i in (0, 3, 10, 13)] == [TRACK_COLORS[0], TRACK_COLORS[3]] * 2
    view = ClassView()
    assert view.track_colors == list(TRACK_COLORS) == FramePreview().track_colors


def test_preview_sends_a_small_jpeg_then_the_result_and_keeps_no_picture(gallery, monkeypatch):
    results, _, frame = gallery
    preview = FramePreview(max_fps=5)
    sent: list[tuple[dict, list]] = []
    monkeypatch.setattr(preview, "send", lambda content, buffers=None: sent.append((content, buffers or [])))
    big = np.ascontiguousarray(np.tile(frame, (1, 2, 1)))  # 2x as wide as the clip
    preview.hold(big)
    preview.show_result(results[-1])
    preview.hold(big)
    preview.show_result(results[-1])  # sooner than 1/max_fps: boxes only
    assert [m["type"] for m, _ in sent] == ["preview", "result", "result"]
    assert sent[0][0]["seq"] == sent[1][0]["seq"] == results[-1].seq
    height, width = simplejpeg.decode_jpeg_header(sent[0][1][0])[:2]
    assert width == 320 and height == round(big.shape[0] * 320 / big.shape[1])
    assert preview.previews_sent == 1
    state = {k: v for k, v in preview.get_state().items() if k not in ("_esm", "_css")}
    assert all(not isinstance(v, bytes | memoryview) for v in state.values())
    assert "/9j/" not in json.dumps(state)  # nor a JPEG as base64 text


def test_classroom_on_a_recording_previews_its_frames_with_named_boxes():
    room = classroom(CLIPS / "single_face_short.mp4", model="fast")
    try:
        assert room.camera is None and room.preview is not None and room.preview in room.children
        assert room.preview.label_ids and room.preview.link == room.view.link == room.view.model_id
        deadline = time.monotonic() + 60
        while room.preview.previews_sent < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert room.preview.previews_sent >= 3
        assert room.preview.last_result["faces"]  # the boxes go with the frames
        room.view.names = {"1": "Ana"}
        assert room.preview.names == {"1": "Ana"}
    finally:
        room.close()

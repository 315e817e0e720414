"""Kernel-side widget tests with the real pipeline: no browser, messages go through ipywidgets' dispatch."""

from __future__ import annotations

import time

import numpy as np
import pytest
import simplejpeg
from conftest import CLIPS, video_frames, wait_for
from ipywebrtc import CameraStream

from emowidgets.liveview import LiveView, live
from emowidgets.pipeline import PipelineState
from emowidgets.startup import WAITING
from emowidgets.vocab import EMOTIONS
from emowidgets.widgets import CameraWidget, EmotionGauge


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    frames = video_frames(CLIPS / "single_face.mp4", every=10)
    return [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=80) for f in frames]


@pytest.fixture
def running(pipeline):
    pipeline.start()
    yield pipeline
    pipeline.stop()


def record_sends(widget, monkeypatch) -> list[dict]:
    sent: list[dict] = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    return sent


def send_frame(widget, data: bytes, seq: int) -> None:
    """Deliver a browser frame message the way the comm does (``method: custom`` + one buffer)."""
    header = {"type": "frame", "seq": seq, "timestamp_ms": 1000 + 33 * seq, "width": 640, "height": 480}
    widget._handle_msg({"content": {"data": {"method": "custom", "content": header}},
                        "buffers": [memoryview(data)]})


def test_frames_give_acks_and_results(running, jpegs, monkeypatch):
    camera = CameraWidget(pipeline=running)
    sent = record_sends(camera, monkeypatch)
    observed: list[dict] = []
    camera.observe(lambda change: observed.append(change["new"]), "last_result")
    for seq, data in enumerate(jpegs[:12], 1):
        send_frame(camera, data, seq)
        wait_for(lambda seq=seq: camera.last_result.get("seq") == seq)
    acks = [m for m in sent if m["type"] == "ack"]
    results = [m for m in sent if m["type"] == "result"]
    assert acks == []  # with a pipeline, each result acks its frame (and older ones) in the browser
    assert [m["seq"] for m in results] == list(range(1, 13))
    assert camera.frames_received == 12
    assert len(observed) == 12
    for message in results:
        (face,) = message["faces"]
        assert face["label"] in EMOTIONS
        x, y, w, h = face["box"]
        assert 0 <= x < 1 and 0 <= y < 1 and 0.05 < w < 1 and 0.05 < h < 1
    camera.close()


def test_corrupt_frame_is_counted_and_skipped(running, jpegs, monkeypatch):
    camera = CameraWidget(pipeline=running)
    sent = record_sends(camera, monkeypatch)
    bad = running.stats.bad_frames
    send_frame(camera, b"\xff\xd8 not a jpeg", 1)
    wait_for(lambda: running.stats.bad_frames == bad + 1)
    send_frame(camera, jpegs[0], 2)
    wait_for(lambda: camera.last_result.get("seq") == 2)
    assert [m["seq"] for m in sent if m["type"] == "ack"] == [1]  # the bad frame, acked when it was skipped
    assert [m["seq"] for m in sent if m["type"] == "result"] == [2]
    camera.close()


def test_other_messages_are_ignored(monkeypatch):
    frames: list[int] = []
    camera = CameraWidget(on_frame=lambda data, seq, ts: frames.append(seq))
    sent = record_sends(camera, monkeypatch)
    hello = {"method": "custom", "content": {"type": "hello"}}
    camera._handle_msg({"content": {"data": hello}, "buffers": []})
    send_frame(camera, b"abc", 7)
    assert frames == [7]
    assert sent == [{"type": "ack", "seq": 7}]


def assert_no_pixels(state: dict) -> None:
    for key, value in state.items():
        assert not isinstance(value, bytes | bytearray | memoryview), key
        if isinstance(value, str) and key not in ("_esm", "_css"):
            assert len(value) < 1000, key


def test_no_image_data_in_traits(running, jpegs, monkeypatch):
    view = live(pipeline=running)
    record_sends(view.camera, monkeypatch)
    for seq, data in enumerate(jpegs[:5], 1):
        send_frame(view.camera, data, seq)
        wait_for(lambda seq=seq: view.camera.last_result.get("seq") == seq)
    assert_no_pixels(view.camera.get_state())
    assert_no_pixels(view.gauge.get_state())
    assert view.camera.last_result["faces"]
    assert all(set(face) == {"box", "id", "label", "score", "age", "tile"} for face in view.camera.last_result["faces"])
    view.close()


def test_gauge_values_from_results(pipeline, jpegs):
    gauge = EmotionGauge(max_rate=1000)
    changes: list[list[float]] = []
    gauge.observe(lambda change: changes.append(change["new"]), "values")
    for seq, data in enumerate(jpegs, 1):
        gauge.update(pipeline.process_bytes(data, seq, seq * 33))
        time.sleep(0.002)
    assert gauge.labels == list(EMOTIONS)
    assert gauge.faces == 1
    assert gauge.dominant in EMOTIONS
    assert sum(gauge.values) == pytest.approx(1.0, abs=0.02)
    assert gauge.fps > 0
    assert len({tuple(v) for v in changes}) > 1  # the clip goes from neutral to a smile


def test_gauge_is_throttled_and_aggregates(pipeline):
    first = video_frames(CLIPS / "multi_face.mp4", every=1000)[0]
    frame = simplejpeg.encode_jpeg(np.ascontiguousarray(first))
    result = pipeline.process_bytes(frame)
    assert len(result.probs) >= 2
    gauge = EmotionGauge(aggregate="mean", max_rate=15)
    pushes: list[int] = []
    gauge.observe(lambda change: pushes.append(change["new"]), "faces")
    gauge.observe(lambda change: pushes.append(-1), "fps")
    start = time.monotonic()
    for _ in range(50):
        gauge.update(result)
    took = time.monotonic() - start
    assert gauge.faces == len(result.probs)
    assert gauge.values == pytest.approx(result.probs.mean(axis=0).tolist(), abs=1e-3)
    # The first update is pushed at once, later ones at most 15 a second however long the 50 took (a push after
    # the first changes only fps, one event): an upper bound from the time measured, not a guess at how fast it runs.
    assert pushes[0] == len(result.probs)
    assert len(pushes) <= 1 + took * gauge.max_rate, (pushes, took)
    gauge.aggregate = "largest"
    time.sleep(0.1)
    gauge.update(result)
    largest = int((result.boxes[:, 2] * result.boxes[:, 3]).argmax())
    assert gauge.values == pytest.approx(result.probs[largest].tolist(), abs=1e-3)
    assert gauge.fps > 0


def test_gauge_without_face(pipeline):
    gauge = EmotionGauge()
    gauge.update(pipeline.process_array(np.zeros((240, 320, 3), np.uint8)))
    assert (gauge.faces, gauge.dominant) == (0, "")


def test_sources():
    stream = CameraStream(constraints={"audio": False, "video": True})
    camera = CameraWidget(stream)
    assert camera.source == "stream"
    assert camera.get_state()["stream"] == f"IPY_MODEL_{stream.model_id}"
    assert CameraWidget("screen").source == "screen"
    assert CameraWidget().source == "camera"


def test_live_close_keeps_a_given_pipeline(running, jpegs, monkeypatch):
    before = running.listener_count
    view = live(pipeline=running, quality=0.6)
    assert isinstance(view, LiveView)
    assert view.children == (view.camera, view.gauge)
    assert view.camera.quality == 0.6
    assert view.gauge.status == WAITING  # until the first result
    record_sends(view.camera, monkeypatch)
    send_frame(view.camera, jpegs[-1], 1)
    wait_for(lambda: view.gauge.faces == 1)
    wait_for(lambda: view.gauge.status == "")  # results come and nothing compiles: no status line
    assert running.listener_count == before + 4  # the camera's result and skip listeners, the gauge's, its status
    view.close()
    assert running.listener_count == before and not running.has_listener(view.gauge.update)
    assert running.state is PipelineState.RUNNING
    # the view says "stopped" instead of vanishing: the camera is closed, the gauge stays in its place
    assert view.camera.comm is None and view.gauge.comm is not None and view.comm is not None
    assert view.children == (view.gauge,) and view.gauge.status == "stopped"


def test_gauge_names_whose_bars_it_shows_and_explains_the_level_line(pipeline):
    first = video_frames(CLIPS / "multi_face.mp4", every=1000)[0]
    result = pipeline.process_array(first, seq=1, timestamp_ms=1000)
    assert len(result.probs) == 4
    gauge = EmotionGauge(max_rate=1000)
    gauge.update(result)
    assert gauge.shown == "bars: the largest of 4 faces (click a box to follow one)"
    assert gauge.level == f"{result.level} · {first.shape[1]}\N{MULTIPLICATION SIGN}{first.shape[0]}"
    assert "fps" not in gauge.level  # the rate is shown once, beside the face count
    assert all(word in gauge.level_help for word in ("TTA", "detect", "frames"))
    time.sleep(0.01)
    gauge.aggregate = "mean"
    gauge.update(result)
    assert gauge.shown == "bars: the mean of 4 faces (click a box to follow one)"
    time.sleep(0.01)
    gauge.update(pipeline.process_array(first[:200, :200] * 0, 2, 1100))
    assert gauge.shown == ""


def test_a_clicked_box_picks_the_face_whose_bars_the_gauge_shows(pipeline):
    first = video_frames(CLIPS / "multi_face.mp4", every=1000)[0]
    result = pipeline.process_array(first)
    largest = int((result.boxes[:, 2] * result.boxes[:, 3]).argmax())
    other = next(i for i in range(len(result.boxes)) if i != largest)
    gauge = EmotionGauge(max_rate=1000)

    def click(track_id: int) -> None:  # the message the page sends when a box of the same link is clicked
        gauge._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "select", "id": track_id}}},
                           "buffers": []})
        time.sleep(0.01)
        gauge.update(result)

    click(int(result.track_ids[other]))
    assert gauge.face == int(result.track_ids[other])
    assert gauge.values == pytest.approx(result.probs[other].tolist(), abs=1e-3)
    assert gauge.shown.startswith("bars: the face you clicked, of 4")
    click(int(result.track_ids[other]))  # clicked again: back to the largest face
    assert gauge.face is None and gauge.values == pytest.approx(result.probs[largest].tolist(), abs=1e-3)
    assert gauge.shown == "bars: the largest of 4 faces (click a box to follow one)"


def test_a_second_live_view_on_the_computer_is_named(running, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr("emowidgets.startup.running_dir", lambda: tmp_path)
    view = live(pipeline=running)
    try:
        assert view.gauge.notice == ""
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            (tmp_path / f"{other.pid}-0").touch()  # the mark a view in that process leaves
            (tmp_path / "999999999-0").touch()  # a kernel that died without closing its view: not counted
            assert view.running.others() == 1 and not (tmp_path / "999999999-0").exists()
            second = live(pipeline=running)
            assert "2 other live views run on this computer" in second.gauge.notice  # the first view and that one
            second.close()
        finally:
            other.kill()
            other.wait()
        assert view.running.others() == 0
    finally:
        view.close()
    assert list(tmp_path.iterdir()) == []  # closed views leave no mark


def test_frames_without_buffers_switch_to_text_transport(running, jpegs, monkeypatch):
    """Colab's widget manager has been reported to drop binary buffers: a bufferless frame is acked and turns on
    text transport; base64 frames then reach the real pipeline."""
    import base64

    camera = CameraWidget(pipeline=running)
    sent = record_sends(camera, monkeypatch)
    assert camera.transport == "binary"
    header = {"type": "frame", "seq": 1, "timestamp_ms": 1000, "width": 640, "height": 480}
    camera._handle_msg({"content": {"data": {"method": "custom", "content": header}}, "buffers": []})
    assert camera.transport == "text" and sent == [{"type": "ack", "seq": 1}]
    text_frame = {**header, "seq": 2, "jpeg": base64.b64encode(jpegs[-1]).decode()}
    camera._handle_msg({"content": {"data": {"method": "custom", "content": text_frame}}, "buffers": []})
    wait_for(lambda: camera.last_result.get("seq") == 2)
    assert len(camera.last_result["faces"]) == 1
    bad = running.stats.bad_frames
    camera._handle_msg({"content": {"data": {"method": "custom", "content": {**header, "seq": 3, "jpeg": "??"}}},
                        "buffers": []})
    wait_for(lambda: running.stats.bad_frames == bad + 1)
    assert camera.transport == "text"
    camera.close()


def test_the_gauge_says_while_it_learns_the_face_s_resting_expression(jpegs):
    """live()'s default: auto-calibration on; until the shown face's resting expression is learned the gauge says
    so, then the line goes."""
    from emowidgets.autocalib import AutoCalibrationOptions
    from emowidgets.pipeline import Pipeline, PipelineOptions

    options = PipelineOptions(auto_calibrate=True, auto_calibration=AutoCalibrationOptions(frames=3))
    gauge = EmotionGauge(max_rate=1000)
    shown = []
    with Pipeline.create_from_options(options, warmup=False) as p:
        for jpeg in jpegs[:4]:
            gauge.update(p.process_bytes(jpeg))
            shown.append(gauge.shown)
            time.sleep(0.01)
    assert shown == ["learning this face's resting expression… 33 %", "learning this face's resting expression… 67 %",
                     "", ""]

"""VideoFileSource: PyAV decoding of the real clips, feeding the real pipeline, end-of-stream and errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import CLIPS

from emowidgets.errors import BusyError, EmowidgetsError
from emowidgets.pipeline import Pipeline
from emowidgets.sources import SourceState, VideoFileError, VideoFileSource
from emowidgets.vocab import FrameResult

SHORT = CLIPS / "single_face_short.mp4"  # 640x360, 30 fps, 72 frames


def test_frames_are_rgb_with_increasing_timestamps():
    source = VideoFileSource(SHORT, realtime=False, size=(320, 180))
    frames = list(source.frames())
    assert len(frames) == 72 == source.frames_read
    assert {f.shape for f, _ in frames} == {(180, 320, 3)} and frames[0][0].dtype == np.uint8
    ts = np.array([t for _, t in frames])
    assert ts[0] == 0 and np.all(np.diff(ts) > 0) and abs(ts[-1] - 71 * 1000 / 30) <= 1
    assert source.fps == pytest.approx(30) and source.duration_s == pytest.approx(2.4, abs=0.05)


def test_run_feeds_every_frame_to_the_pipeline_and_ends_cleanly(pipeline: Pipeline):
    source = VideoFileSource(SHORT, realtime=False)
    results: list[FrameResult] = []
    pipeline.add_listener(results.append)
    assert source.run(pipeline) == 72
    assert source.state is SourceState.ENDED and source.error == ""
    assert [r.seq for r in results] == list(range(72))
    assert all(len(r.track_ids) == 1 for r in results)
    assert len({int(r.track_ids[0]) for r in results}) == 1
    assert (results[0].width, results[0].height) == (640, 360)


def test_the_old_on_result_argument_listens_for_one_run_and_says_it_is_deprecated(pipeline: Pipeline):
    results: list[FrameResult] = []
    with pytest.warns(DeprecationWarning, match=r"pipeline.add_listener\(on_result\) instead"):
        assert VideoFileSource(SHORT, realtime=False, size=(320, 180)).run(pipeline, results.append) == 72
    assert [r.seq for r in results] == list(range(72)) and pipeline.listener_count == 0


def test_realtime_keeps_to_the_clip_clock_and_can_be_stopped(pipeline: Pipeline):
    source = VideoFileSource(SHORT, realtime=True, size=(320, 180))
    t0 = time.monotonic()
    processed = source.run(pipeline)
    assert time.monotonic() - t0 >= 2.3
    assert source.state is SourceState.ENDED
    assert processed + source.frames_dropped == 72

    source = VideoFileSource(SHORT, realtime=True)
    seen: list[FrameResult] = []

    def stop_after_five(result: FrameResult) -> None:  # stopped on a condition, not after some time
        seen.append(result)
        if len(seen) == 5:
            source.stop()

    pipeline.add_listener(stop_after_five)
    try:
        processed = source.run(pipeline)
    finally:
        pipeline.remove_listener(stop_after_five)
    assert source.state is SourceState.STOPPED and processed == len(seen) == 5
    assert source.frames_read == 5 + source.frames_dropped < 72  # no frame is read after the stop


def test_missing_file_has_a_clear_error(tmp_path):
    with pytest.raises(VideoFileError, match="no such video file"):
        VideoFileSource(tmp_path / "class.mp4")


def test_not_a_video_has_a_clear_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"not a video " * 100)
    with pytest.raises(EmowidgetsError, match="cannot read video file"):
        VideoFileSource(path)


def test_truncated_video_fails_with_state_and_message(tmp_path, pipeline: Pipeline):
    path = tmp_path / "truncated.mp4"
    path.write_bytes((CLIPS / "multi_face.mp4").read_bytes()[:50_000])
    source = VideoFileSource(path, realtime=False, size=(320, 240))
    with pytest.raises(VideoFileError, match="corrupt after frame"):
        source.run(pipeline)
    assert source.state is SourceState.FAILED and "corrupt" in source.error


def test_running_a_running_source_again_is_refused(pipeline: Pipeline):
    source = VideoFileSource(SHORT, realtime=True)
    thread = threading.Thread(target=source.run, args=(pipeline,))
    thread.start()
    deadline = time.monotonic() + 10
    while source.state is not SourceState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(BusyError, match="already running"):
        source.run(pipeline)
    source.stop()
    thread.join(10)
    assert source.state is SourceState.STOPPED

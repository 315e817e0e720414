"""Kernel sources and sessions survive what the live loop survives (issue 26, defects 3 and 4): one failing frame
is skipped and counted, a failing source ends ``FAILED`` with its error and can run again, and a view may close
its own session from inside its listener without leaking the pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import CLIPS

from emowidgets.errors import VideoFileError
from emowidgets.pipeline import Pipeline, PipelineState
from emowidgets.sources import FrameSource, SourceState, VideoFileSource

SHORT = CLIPS / "single_face_short.mp4"  # 640x360, 30 fps, 72 frames


class FailsOnce:
    """A head that raises on its second face batch, then gives the base scores (a buggy adapter)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("adapter bug")
        return base_probs, ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_a_frame_that_fails_is_skipped_and_counted_and_the_source_plays_on(pipeline: Pipeline, caplog):
    source = VideoFileSource(SHORT, realtime=False, size=(320, 180))
    pipeline.head = FailsOnce()
    try:
        with caplog.at_level(logging.ERROR, "emowidgets.sources"):
            processed = source.run(pipeline)
    finally:
        pipeline.head = None
    assert source.state is SourceState.ENDED and source.error == ""
    assert processed == 71 and source.frames_failed == 1  # before: RuntimeError after 2 of 72, state RUNNING
    assert source.last_frame_error == "RuntimeError: adapter bug"
    assert "frame 1 failed" in caplog.text  # a bug, not a bad frame: logged with its traceback
    assert source.run(pipeline) == 72  # it can run again


class Unplugged(FrameSource):
    """Real frames of a clip, then the device fails as a camera that is unplugged does."""

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        for i, (rgb, _) in enumerate(VideoFileSource(SHORT, realtime=False, size=(320, 180)).frames()):
            if i == 3:
                raise OSError("device went away")
            yield rgb, i + 1


def test_a_source_that_fails_ends_failed_with_its_error_and_can_run_again(pipeline: Pipeline, tmp_path):
    source = Unplugged()
    for _ in range(2):  # the second run is not refused as busy
        with pytest.raises(OSError, match="device went away"):
            source.run(pipeline)
        assert source.state is SourceState.FAILED and source.error == "device went away"
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((CLIPS / "multi_face.mp4").read_bytes()[:50_000])
    video = VideoFileSource(truncated, realtime=False, size=(320, 240))
    for _ in range(2):
        with pytest.raises(VideoFileError, match="corrupt after frame"):
            video.run(pipeline)
        assert video.state is SourceState.FAILED


def test_closing_a_live_view_from_its_own_listener_closes_its_pipeline(caplog):
    import emowidgets

    view = emowidgets.live("kernel", model="fast", device=str(SHORT))
    pipeline = view.pipeline
    with caplog.at_level(logging.ERROR):
        pipeline.add_listener(lambda result: view.close())  # e.g. a notebook's "stop after the first face"
        end = time.monotonic() + 120
        while pipeline.state is not PipelineState.CLOSED and time.monotonic() < end:
            time.sleep(0.05)
        thread = view.session.thread
        assert thread is not None
        thread.join(30)
    assert pipeline.state is PipelineState.CLOSED  # before: stayed CREATED ("cannot join current thread")
    assert not thread.is_alive() and view.camera.source.state is SourceState.STOPPED
    assert "cannot join" not in caplog.text and view.camera.status == "stopped"
    view.close()  # again: a no-op


def test_closing_a_classroom_from_its_own_listener_closes_its_pipeline(caplog):
    """The same for ``classroom(mp4)``: its session's view closes the room (before: the pipeline stayed
    ``CREATED``, "cannot join current thread" logged)."""
    import emowidgets

    room = emowidgets.classroom(str(SHORT), model="fast", preset="camera")
    pipeline = room.pipeline
    with caplog.at_level(logging.ERROR):
        room.session.add_view(lambda result: room.close())
        end = time.monotonic() + 120
        while pipeline.state is not PipelineState.CLOSED and time.monotonic() < end:
            time.sleep(0.05)
        thread = room.session._thread
        assert thread is not None
        thread.join(30)
    assert pipeline.state is PipelineState.CLOSED and not thread.is_alive()
    assert "cannot join" not in caplog.text
    room.close()  # again: a no-op

"""Pipeline life cycle on the real pipeline: no silent use after close, no threads or listeners left behind by a
failing constructor or a re-run notebook cell, stop() from inside a listener."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import simplejpeg
from conftest import CLIPS, video_frames, wait_for

from emowidgets import classroom
from emowidgets.calibration import CalibrationWidget
from emowidgets.errors import ClosedError, EmowidgetsError, OptionsError
from emowidgets.liveview import live
from emowidgets.pipeline import Pipeline, PipelineOptions, PipelineState
from emowidgets.widgets import CameraWidget


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(video_frames(CLIPS / "single_face.mp4", every=300)[0]))


def threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def test_states_and_closed_errors(jpeg):
    p = Pipeline.create_from_options(warmup=False)
    assert p.state is PipelineState.CREATED
    assert len(p.process_bytes(jpeg).boxes) == 1
    p.start()
    assert p.state is PipelineState.RUNNING
    p.stop()
    assert p.state is PipelineState.CREATED
    p.add_listener(print)
    p.close()
    assert p.state is PipelineState.CLOSED and p.listener_count == 0
    frame = simplejpeg.decode_jpeg(jpeg)
    for call in (lambda: p.submit(jpeg), lambda: p.process_bytes(jpeg), lambda: p.process_array(frame),
                 lambda: p.process_image(jpeg), p.start, lambda: p.add_listener(print)):
        with pytest.raises(ClosedError, match="closed"):
            call()
    assert p.stats.received == 0  # nothing was queued to be silently lost
    p.close()  # again: a no-op


def test_close_from_a_listener_ends_the_worker(jpeg):
    p = Pipeline.create_from_options(warmup=False)
    before = threads()
    p.add_listener(lambda _: p.close())
    p.start()
    p.submit(jpeg)
    wait_for(lambda: p.state is PipelineState.CLOSED)
    wait_for(lambda: threads() <= before)
    with pytest.raises(ClosedError, match="this pipeline is closed"):
        p.submit(jpeg)


def test_stop_from_a_listener_does_not_raise(jpeg, caplog):
    results = []
    with Pipeline.create_from_options(PipelineOptions(queue_size=8), warmup=False) as p:
        p.process_bytes(jpeg)  # MediaPipe's threads (the second look's detector loads on the first face) start here
        before = threads()

        def stop_after_first(result) -> None:
            results.append(result)
            p.stop()

        p.add_listener(stop_after_first)
        with caplog.at_level(logging.ERROR, logger="emowidgets.pipeline"):
            p.start()
            p.submit(jpeg, seq=1)
            wait_for(lambda: p.state is PipelineState.CREATED)
            wait_for(lambda: threads() <= before)
        assert [r.seq for r in results] == [1]
        assert not caplog.records  # no "cannot join current thread" from the listener
        p.start()  # a stopped pipeline starts again
        p.submit(jpeg, seq=2)
        wait_for(lambda: len(results) == 2)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: live(source=42), "source must be"),
    (lambda: live(source="webcam"), "source must be"),
    (lambda: live(detector="medium"), "detector must be 'short'"),
    (lambda: live(aggregate="median"), "aggregate"),
    (lambda: classroom(42), "source must be"),
    (lambda: classroom("screen", detector="lecture"), "detector must be 'short'"),
    (lambda: live(model="/no/such/weights.safetensors"), "model file not found"),
], ids=["live-int", "live-name", "live-detector", "live-aggregate", "classroom-int", "classroom-detector",
        "live-weights"])
def test_failing_constructors_leave_no_thread(make, match):
    before = threads()
    with pytest.raises(EmowidgetsError, match=match):
        make()
    assert threads() == before


def test_bad_camera_settings_are_refused_before_any_pipeline_or_thread():
    before = threads()
    with pytest.raises(OptionsError, match=r"bad camera setting quality=7.0: .*should not be greater than 1.0"):
        live(model="fast", quality=7.0)  # before: the pipeline was built (and its compile thread), then closed
    with pytest.raises(OptionsError, match=r"bad camera setting max_in_flight=0: .*should not be less than 1"):
        classroom("camera", model="fast", max_in_flight=0)
    assert threads() == before


def test_rebuilt_widgets_replace_their_listeners(pipeline):
    base = pipeline.listener_count
    for _ in range(5):  # a notebook cell re-run five times
        CameraWidget(pipeline=pipeline)
    assert pipeline.listener_count == base + 2  # one result listener, one skip listener
    panels = [CalibrationWidget(pipeline) for _ in range(5)]
    assert pipeline.listener_count == base + 3
    before = threads()
    views = [live(pipeline=pipeline) for _ in range(5)]
    assert pipeline.listener_count == base + 5  # the camera slot is the same; the gauge and its status line two more
    assert threads() == before | ({pipeline.worker} - {None})  # one worker, started once
    assert [pipeline.has_listener(v.camera.show_result) for v in views] == [False] * 4 + [True]
    views[-1].close()
    assert pipeline.listener_count == base + 1  # the calibration panel's
    panels[-1].close()
    assert pipeline.listener_count == base
    pipeline.stop()

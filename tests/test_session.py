"""Session: one wiring from a source to the views, with one close path (real pipeline, real clip)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import CLIPS, wait_for

from emowidgets.errors import ClosedError
from emowidgets.pipeline import Pipeline, PipelineState
from emowidgets.session import Session
from emowidgets.sources import VideoFileSource
from emowidgets.vocab import FrameResult

SHORT = CLIPS / "single_face_short.mp4"  # 72 frames, one face


def test_a_kernel_source_feeds_every_listener_in_order_and_a_failing_one_does_not_stop_it(pipeline: Pipeline):
    statuses: list[str] = []
    calls: list[tuple[str, int]] = []

    def broken(result: FrameResult) -> None:
        raise RuntimeError("a view with a bug")

    session = Session(pipeline, VideoFileSource(SHORT, realtime=False), owns_pipeline=False,
                      on_status=statuses.append)
    pipeline.add_listener(lambda r: calls.append(("first", r.seq)))
    pipeline.add_listener(broken)
    pipeline.add_listener(lambda r: calls.append(("second", r.seq)))
    session.start()
    wait_for(lambda: statuses[-1:] == ["video ended"])
    assert statuses == ["playing single_face_short.mp4", "video ended"]
    assert calls == [(name, seq) for seq in range(72) for name in ("first", "second")]
    session.close()
    assert pipeline.state is not PipelineState.CLOSED  # not owned: left open


def test_close_stops_the_source_joins_its_thread_and_closes_an_owned_pipeline():
    before = set(threading.enumerate())
    statuses: list[str] = []
    owned = Pipeline.create_from_options(warmup=False)
    session = Session(owned, VideoFileSource(SHORT, realtime=True), on_status=statuses.append)
    seen: list[int] = []
    owned.add_listener(lambda r: seen.append(r.seq))
    session.start()
    wait_for(lambda: len(seen) >= 3)
    session.close()
    assert set(threading.enumerate()) <= before and statuses[-1] == "stopped"
    assert owned.state is PipelineState.CLOSED
    with pytest.raises(ClosedError, match="this pipeline is closed"):
        owned.process_image(b"")
    session.close()  # again: a no-op


def test_the_old_bridges_still_work_and_say_they_are_deprecated(pipeline: Pipeline):
    session = Session(pipeline, VideoFileSource(SHORT, realtime=False), owns_pipeline=False)
    seen: list[int] = []
    with pytest.warns(DeprecationWarning, match=r"add_listener\(view\) instead"):
        session.add_view(lambda r: seen.append(r.seq))
    session.start()
    wait_for(lambda: len(seen) == 72)
    assert seen == list(range(72))  # once each: the pipeline delivered, nothing was fed twice
    first = pipeline.process_and_deliver(np.zeros((64, 64, 3), np.uint8))
    with pytest.warns(DeprecationWarning, match="reach the pipeline's listeners by themselves"):
        session.feed(first)
    assert seen[-2:] == [0, 0]  # the listener got the new frame, and feed gave it once more
    session.close()
    assert pipeline.listener_count == 0  # the view added through the session left with it

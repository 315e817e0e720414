"""The pipeline's worker (emowidgets.worker) on its own: it is handed the per-frame processing as a function, so
these tests give it a plain one (no detector, no model) and hold its frames with an event to fill the queue."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import wait_for

from emowidgets.errors import ClosedError, FrameError
from emowidgets.vocab import EMOTIONS, FrameResult
from emowidgets.worker import FrameWorker


def no_faces(seq: int, timestamp_ms: int) -> FrameResult:
    """A frame's result without a face."""
    empty = np.zeros((0, len(EMOTIONS)), np.float32)
    return FrameResult(seq, timestamp_ms, 4, 4, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int64), empty, empty, np.zeros((0, 8), np.float32), EMOTIONS, {"total": 0.0})


class Held:
    """A processing function that waits for ``go`` on every frame and fails on ``bad`` seqs."""

    def __init__(self, bad: tuple[int, ...] = ()) -> None:
        self.go = threading.Event()
        self.inside = threading.Event()
        self.bad = bad

    def __call__(self, frame: object, seq: int, timestamp_ms: int) -> FrameResult:
        self.inside.set()
        assert self.go.wait(30)
        if seq in self.bad:
            raise FrameError(f"frame {seq} is corrupt")
        return no_faces(seq, timestamp_ms)


def test_the_queue_drops_the_oldest_and_every_frame_ends_in_a_result_or_a_skip():
    process, loads = Held(bad=(5,)), []
    worker = FrameWorker(process, loads.append, queue_size=2)
    seen, skipped = [], []
    worker.add_listener(lambda r: seen.append(r.seq), None)
    worker.add_skip_listener(skipped.append, None)
    worker.start()
    worker.submit(b"0", 0, 0)
    assert process.inside.wait(30)  # the worker holds frame 0: the next ones wait in the queue
    for seq in range(1, 5):
        worker.submit(b"x", seq, 0)
    assert worker.queued == (3, 4) and skipped == [1, 2]
    worker.submit(b"x", 5, 0)  # drops 3; 5 is bad
    worker.submit(b"x", 6, 0)  # drops 4
    process.go.set()
    wait_for(lambda: seen == [0, 6] and skipped == [1, 2, 3, 4, 5])
    assert (worker.stats.received, worker.stats.dropped, worker.stats.processed, worker.stats.bad_frames) == (
        7, 4, 2, 1)
    assert len(loads) == 2  # one load per delivered frame
    worker.close(5)
    assert worker.thread is None and worker.listener_count == 0


def test_a_slot_replaces_and_a_failing_listener_does_not_stop_the_others():
    process = Held()
    process.go.set()
    worker = FrameWorker(process, lambda _: None, queue_size=2)
    first, second, later = [], [], []

    def broken(_: FrameResult) -> None:
        raise RuntimeError("a listener's bug")

    worker.add_listener(first.append, "camera")
    worker.add_listener(second.append, "camera")  # a re-run cell: takes the first one's place
    worker.add_listener(broken, None)
    worker.add_listener(later.append, None)
    assert not worker.has_listener(first.append) and worker.listener_count == 3
    result = worker.deliver(np.zeros((4, 4, 3), np.uint8), 7, 0)
    assert first == [] and second == [result] and later == [result]
    worker.remove_listener(second.append)
    assert not worker.has_listener(second.append)


def test_close_from_a_listener_ends_the_worker_and_refuses_later_calls():
    process = Held()
    process.go.set()
    worker = FrameWorker(process, lambda _: None, queue_size=2)
    worker.add_listener(lambda _: worker.close(5), None)  # on the worker's own thread: it must not join itself
    worker.start()
    thread = worker.thread
    assert thread is not None
    worker.submit(b"x", 1, 0)
    thread.join(30)
    assert not thread.is_alive() and worker.closed and worker.close(5) is False  # again: a no-op
    for call in (lambda: worker.submit(b"x", 2, 0), worker.start, lambda: worker.add_listener(print, None)):
        with pytest.raises(ClosedError, match="this pipeline is closed"):
            call()

"""A pipeline's delivery and worker thread: listeners (with slots), skip listeners, the bounded drop-oldest queue
and the thread that drains it. Nothing here processes a frame: :class:`~emowidgets.pipeline.Pipeline` owns one
:class:`FrameWorker` and hands it its per-frame processing as a function.

The browser sends frames faster than or as fast as we can process them; the queue is bounded and drops the
*oldest* frame when full, so results stay current and memory stays flat. Every source's results leave through
:meth:`FrameWorker.deliver` (the worker's queued frames, a kernel source's frames on its own thread): listeners
are called with each result on the thread that processed it. A frame that fails is counted and told to the skip
listeners, and the worker goes on to the next: it never dies from one.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from emowidgets.errors import ClosedError, FrameError
from emowidgets.vocab import FrameResult

log = logging.getLogger("emowidgets.worker")


@dataclasses.dataclass
class PipelineStats:
    """Counters since start; read them from any thread."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad_frames: int = 0


class FrameWorker:
    """Delivers a pipeline's results to its listeners and runs its worker thread over a drop-oldest queue.

    Args:
        process: ``process(frame, seq, timestamp_ms)``, one frame (encoded bytes or a decoded array) to its
            result; raises :class:`~emowidgets.errors.ClosedError` once the pipeline is closed.
        record_load: told each delivered frame's time in ms, listeners included (the quality ladder's input).
        queue_size: frames waiting for the worker; more arrivals drop the oldest.
    """

    def __init__(self, process: Callable[[bytes | memoryview | np.ndarray, int, int], FrameResult],
                 record_load: Callable[[float], None], queue_size: int) -> None:
        self._process = process
        self._record_load = record_load
        self._queue_size = queue_size
        self.stats = PipelineStats()
        self._listeners: list[Callable[[FrameResult], None]] = []
        self._skip_listeners: list[Callable[[int], None]] = []
        self._slots: dict[tuple[str, str], Callable[..., None]] = {}
        self._queue: collections.deque[tuple[bytes, int, int]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (final)."""
        return self._closed

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread while running (``None`` before :meth:`start`, after :meth:`stop` or :meth:`close`)."""
        return self._thread

    def check_open(self) -> None:
        """Raise :class:`~emowidgets.errors.ClosedError` once closed: the one message every closed call gives."""
        if self._closed:
            raise ClosedError("this pipeline is closed (its detector is released): make a new one")

    # -- listeners ---------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[FrameResult], None], slot: str | None) -> None:
        """Call ``fn(result)`` after each delivered frame; under ``slot`` it replaces the one added before there."""
        self._add(self._listeners, "result", fn, slot)

    def remove_listener(self, fn: Callable[[FrameResult], None]) -> None:
        """Stop calling ``fn`` (no-op if it is not a listener)."""
        self._remove(self._listeners, "result", fn)

    def add_skip_listener(self, fn: Callable[[int], None], slot: str | None) -> None:
        """Call ``fn(seq)`` for each frame that ends without a result (dropped or bad); ``slot`` as above."""
        self._add(self._skip_listeners, "skip", fn, slot)

    def remove_skip_listener(self, fn: Callable[[int], None]) -> None:
        """Stop calling ``fn`` for skipped frames."""
        self._remove(self._skip_listeners, "skip", fn)

    def has_listener(self, fn: Callable[[FrameResult], None]) -> bool:
        """Whether ``fn`` is (still) a result listener."""
        with self._cond:
            return fn in self._listeners

    @property
    def listener_count(self) -> int:
        """Result and skip listeners attached now."""
        with self._cond:
            return len(self._listeners) + len(self._skip_listeners)

    @property
    def queued(self) -> tuple[int, ...]:
        """The ``seq`` of each frame waiting for the worker, oldest first."""
        with self._cond:
            return tuple(seq for _, seq, _ in self._queue)

    def _add(self, listeners: list[Callable[..., None]], kind: str, fn: Callable[..., None], slot: str | None
             ) -> None:
        with self._cond:
            self.check_open()
            if slot is not None:
                old = self._slots.get((kind, slot))
                if old is not None and old in listeners:
                    listeners.remove(old)
                self._slots[(kind, slot)] = fn
            listeners.append(fn)

    def _remove(self, listeners: list[Callable[..., None]], kind: str, fn: Callable[..., None]) -> None:
        with self._cond:
            if fn in listeners:
                listeners.remove(fn)
            self._slots = {k: v for k, v in self._slots.items() if not (k[0] == kind and v == fn)}

    def _skipped(self, seq: int) -> None:
        for fn in list(self._skip_listeners):
            try:
                fn(seq)
            except Exception:
                log.exception("skip listener %r failed", fn)

    # -- delivery ----------------------------------------------------------------------------------
    def deliver(self, frame: bytes | memoryview | np.ndarray, seq: int, timestamp_ms: int) -> FrameResult:
        """Process one frame on this thread and give its result to every listener, in the order they were added
        (a failing one is logged, the others still get it); the time taken, listeners included, goes to
        ``record_load``. A frame that fails is counted in ``stats.bad_frames`` (a bug, not a bad frame, is logged
        with its traceback), skip listeners are told its ``seq``, and its error is raised for the caller.

        Raises:
            FrameError: a bad frame (or whatever else processing it raised).
            ClosedError: the pipeline is closed.
        """
        started = time.perf_counter()
        try:
            result = self._process(frame, seq, timestamp_ms)
        except ClosedError:
            raise
        except Exception as exc:  # the live loop must survive anything one frame does: count it, let the caller skip
            if not isinstance(exc, FrameError):
                log.exception("frame %d failed", seq)
            with self._cond:
                self.stats.bad_frames += 1
            self._skipped(seq)
            raise
        with self._cond:
            self.stats.processed += 1
            listeners = list(self._listeners)  # taken now: one removed (or a close) meanwhile is not called
        for fn in listeners:
            try:
                fn(result)
            except Exception:
                log.exception("listener %r failed", fn)
        self._record_load((time.perf_counter() - started) * 1000)
        return result

    # -- the worker thread -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent while running).

        Raises:
            ClosedError: closed.
        """
        with self._cond:
            self.check_open()
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, name="emowidgets-pipeline", daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the worker; frames still queued are discarded. From a listener (on the worker thread) the worker
        ends after that listener returns, without joining itself."""
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def submit(self, data: bytes | memoryview, seq: int, timestamp_ms: int) -> None:
        """Queue an encoded frame for the worker; when the queue is full the oldest frame is dropped (and told to
        the skip listeners).

        Raises:
            ClosedError: closed (a frame queued then would never be processed).
        """
        dropped: int | None = None
        with self._cond:
            self.check_open()
            self.stats.received += 1
            if len(self._queue) >= self._queue_size:
                dropped = self._queue.popleft()[1]
                self.stats.dropped += 1
            self._queue.append((bytes(data), seq, timestamp_ms))
            self._cond.notify()
        if dropped is not None:
            self._skipped(dropped)

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while self._thread is me and not self._queue:
                    self._cond.wait()
                if self._thread is not me:
                    return
                data, seq, ts = self._queue.popleft()
            try:
                self.deliver(data, seq, ts)
            except ClosedError:
                return
            except Exception:  # counted, logged and told to the skip listeners already: next frame
                continue

    def close(self, timeout: float) -> bool:
        """Refuse every later call, drop the queue and every listener, and stop the worker (joined for up to
        ``timeout`` s unless this is the worker's own thread). Returns whether this call closed it (a second
        one is a no-op and returns ``False``)."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
            self._listeners.clear()
            self._skip_listeners.clear()
            self._slots.clear()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return True

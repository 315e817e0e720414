"""One wiring from a source through the pipeline to the views, used by ``live()`` and ``classroom()``.

A source is either a browser :class:`~emowidgets.widgets.CameraWidget` (camera, shared screen or an ipywebrtc
stream: its frames reach the pipeline's worker thread through ``submit``) or a kernel-side source with
``run(pipeline, on_result)`` and ``stop()`` (a video file; any other kernel source of that shape), played on a
thread of the session's own. Either way every result goes to each view in the order they were added, on
one thread, and :meth:`Session.close` stops the source, then the pipeline (if the session owns it), once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from emowidgets.entry import ClosingContext
from emowidgets.pipeline import Pipeline
from emowidgets.sources import SourceState
from emowidgets.vocab import FrameResult
from emowidgets.widgets import CameraWidget

log = logging.getLogger("emowidgets.session")

View = Callable[[FrameResult], None]
"""Anything fed with each result: a gauge's or class view's ``update``, a calibration panel's ``on_result``."""


class KernelSource(Protocol):
    """A source that reads frames in the kernel and runs them through the pipeline itself (a video file)."""

    state: SourceState

    def run(self, pipeline: Pipeline, on_result: View | None = None) -> int:
        """Process frames until the end or :meth:`stop`; call ``on_result`` with each result."""
        ...

    def stop(self) -> None:
        """Ask :meth:`run` (on another thread) to stop."""
        ...


class Session(ClosingContext):
    """Source -> pipeline -> views; ``with Session(...) as session:`` closes it at the end of the block.

    Args:
        pipeline: the pipeline that processes the frames.
        source: a browser :class:`CameraWidget` built on ``pipeline``, a :class:`KernelSource`, or None
            (the owner feeds results with :meth:`feed`).
        owns_pipeline: close the pipeline in :meth:`close`.
        on_status: called with a short status text when a kernel source starts (``"playing NAME"``), ends
            (``"video ended"``), stops (``"stopped"``) or fails (``"error: ..."``), and with each status
            change of a camera.
    """

    def __init__(self, pipeline: Pipeline, source: CameraWidget | KernelSource | None = None, *,
                 owns_pipeline: bool = True, on_status: Callable[[str], None] | None = None) -> None:
        self.pipeline = pipeline
        self.source = source
        self.owns_pipeline = owns_pipeline
        self._on_status = on_status or (lambda _: None)
        self._views: list[View] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def add_view(self, view: View) -> None:
        """Feed ``view`` with every result from now on."""
        self._views.append(view)

    def feed(self, result: FrameResult) -> None:
        """Give ``result`` to every view; a failing view is logged and the others still get it."""
        for view in list(self._views):
            try:
                view(result)
            except Exception:
                log.exception("view %r failed", view)

    def start(self) -> None:
        """Start the flow: the pipeline's worker for a camera, a playing thread for a kernel source."""
        if isinstance(self.source, CameraWidget):
            self.pipeline.add_listener(self.feed, slot="session")  # a re-run cell's session replaces this one
            self.source.observe(self._camera_status, "status")
            self.pipeline.start()
        elif self.source is not None:
            self._thread = threading.Thread(target=self._play, args=(self.source,), name="emowidgets-session",
                                            daemon=True)
            self._thread.start()

    def _camera_status(self, change: dict[str, str]) -> None:
        self._on_status(change["new"])

    def _play(self, source: KernelSource) -> None:
        self._on_status(f"playing {_name(source)}")
        try:
            source.run(self.pipeline, self.feed)
        except Exception as exc:  # shown to the user; the kernel stays usable
            self._on_status(f"error: {exc}")
            return
        self._on_status("video ended" if source.state is SourceState.ENDED else "stopped")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the source and its thread, then the pipeline if owned (again is a no-op).

        Safe from a view (on the session's own thread or the pipeline's worker): the thread is then not waited
        for, it ends after that view returns. A frame still being processed after ``timeout`` s is left to
        finish: the pipeline releases its detector after it (:meth:`Pipeline.close`).
        """
        if self._closed:
            return
        self._closed = True
        try:
            if isinstance(self.source, CameraWidget):
                self.pipeline.remove_listener(self.feed)
                self.source.close()
            elif self.source is not None:
                self.source.stop()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("the source is still processing a frame after %.0f s; closing anyway", timeout)
        finally:
            if self.owns_pipeline:
                self.pipeline.close()


def _name(source: object) -> str:
    """What a status line calls a kernel source: its file's name if it has one."""
    path = getattr(source, "path", None)
    return getattr(path, "name", str(source))

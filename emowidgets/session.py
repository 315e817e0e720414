"""One wiring from a source through the pipeline to the views, used by ``live()`` and ``classroom()``.

A source is either a browser :class:`~emowidgets.widgets.CameraWidget` (camera, shared screen or an ipywebrtc
stream: its frames reach the pipeline's worker thread through ``submit``) or a kernel-side source with
``run(pipeline)`` and ``stop()`` (a video file, the kernel camera; any other kernel source of that shape), played
on a thread of the session's own. Either way every result leaves the pipeline by one path,
:meth:`~emowidgets.pipeline.Pipeline.process_and_deliver`, to the pipeline's listeners (the views, a
calibration panel) in the order they were added, and :meth:`Session.close` stops the source, then the pipeline
(if the session owns it), once.
"""

from __future__ import annotations

import logging
import threading
import warnings
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

    def run(self, pipeline: Pipeline) -> int:
        """Process frames until the end or :meth:`stop`; the results go to the pipeline's listeners."""
        ...

    def stop(self) -> None:
        """Ask :meth:`run` (on another thread) to stop."""
        ...


class Session(ClosingContext):
    """Source -> pipeline -> views; ``with Session(...) as session:`` closes it at the end of the block.

    Args:
        pipeline: the pipeline that processes the frames.
        source: a browser :class:`CameraWidget` built on ``pipeline``, a :class:`KernelSource`, or None
            (the owner runs frames through the pipeline itself).
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
        self._views: list[View] = []  # added through the deprecated add_view: removed again at close
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def thread(self) -> threading.Thread | None:
        """The thread playing a kernel source (``None`` for a browser camera, or before :meth:`start`)."""
        return self._thread

    def add_view(self, view: View) -> None:
        """Deprecated: ``session.pipeline.add_listener(view)`` feeds ``view`` with every result (this does that,
        and the session removes it again at :meth:`close`)."""
        warnings.warn("Session.add_view(view) is deprecated: results go to the pipeline's listeners; call "
                      "session.pipeline.add_listener(view) instead", DeprecationWarning, stacklevel=2)
        self.pipeline.add_listener(view)
        self._views.append(view)

    def feed(self, result: FrameResult) -> None:
        """Deprecated: give ``result`` to the views added with :meth:`add_view` (a failing one is logged). Results
        reach the pipeline's listeners by themselves (:meth:`Pipeline.process_and_deliver`)."""
        warnings.warn("Session.feed(result) is deprecated: every source's results reach the pipeline's listeners "
                      "by themselves (Pipeline.process_and_deliver)", DeprecationWarning, stacklevel=2)
        for view in list(self._views):
            try:
                view(result)
            except Exception:
                log.exception("view %r failed", view)

    def start(self) -> None:
        """Start the flow: the pipeline's worker for a camera, a playing thread for a kernel source."""
        if isinstance(self.source, CameraWidget):
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
            source.run(self.pipeline)
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
            for view in self._views:
                self.pipeline.remove_listener(view)
            if isinstance(self.source, CameraWidget):
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

"""``emowidgets.live()``: camera preview with face boxes next to an emotion gauge, in one call.

``live("kernel")`` reads the camera in the kernel instead (:class:`~emowidgets.sources.CameraSource`), for
frontends whose page cannot open one; it shows a status line instead of a preview: no picture leaves the kernel.
"""

from __future__ import annotations

import html
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets
import traitlets
from ipywebrtc import MediaStream

from emowidgets.entry import ClosingContext, check_camera_options, check_source, marimo_parts
from emowidgets.errors import OptionsError
from emowidgets.pipeline import Pipeline
from emowidgets.session import Session
from emowidgets.sources import CameraSource, entry_options
from emowidgets.startup import WAITING, WARMING, Running, others_text, start_pipeline
from emowidgets.vocab import FrameResult
from emowidgets.widgets import BROWSER_OPTIONS, SOURCES, CameraWidget, EmotionGauge, check_camera_settings

KERNEL_OPTIONS = ("size",)
"""The :class:`~emowidgets.sources.CameraSource` arguments ``live("kernel")`` passes on."""

_views: dict[str, weakref.ref[LiveView]] = {}
"""The live view each call site (a notebook cell, a line of a script) made last: a re-run closes it first."""


class KernelCamera(ipywidgets.HTML):  # type: ignore[misc]
    """The status line of a camera read in the kernel (its :class:`~emowidgets.session.Session` plays it): what
    the source is doing, frames per second and faces; no picture.

    Args:
        source: the opened camera.
    """

    status = traitlets.Unicode("starting", help="the session's status text: playing ..., video ended, stopped, "
                               "error: ...").tag(sync=True)

    def __init__(self, source: CameraSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("emow-kernel-camera")
        self.source = source
        self._times: list[float] = []
        self._shown = 0.0
        self._detail = ""
        self.show_status("starting")

    def show_status(self, status: str) -> None:
        """Show the session's ``status`` (its ``on_status``)."""
        self.status = status
        text = f"kernel camera {self.source.device!r}: {status}" + (f" · {self._detail}" if self._detail else "")
        self.value = f'<span class="emow-kernel-status">{html.escape(text)}</span>'

    def update(self, result: FrameResult) -> None:
        """Count ``result`` (a session view); the line is redrawn at most twice a second."""
        now = time.monotonic()
        self._times = [t for t in self._times if now - t <= 1.0] + [now]
        if now - self._shown >= 0.5:
            self._shown = now
            self._detail = f"{len(self._times)} frames/s, {len(result.boxes)} face(s)"
            self.show_status(self.status)


OTHERS_EVERY_S = 5.0
"""How often a running view looks again for other views on this computer."""


class LiveView(ClosingContext, ipywidgets.HBox):  # type: ignore[misc]
    """The box ``live()`` returns; ``camera``, ``gauge``, ``pipeline`` and ``session`` (the
    :class:`~emowidgets.session.Session` wiring them) are its parts.

    The gauge's ``status`` says ``"starting: ..."`` until results come (and while the classifier still compiles
    its other batch sizes), and its ``notice`` when other live views run on this computer (checked every
    :data:`OTHERS_EVERY_S` s). ``close()`` (or the end of a ``with live(...) as view:`` block) stops the worker
    thread and the camera; the gauge stays, saying ``"stopped"``.
    """

    def __init__(self, camera: CameraWidget | KernelCamera, gauge: EmotionGauge, pipeline: Pipeline, *,
                 owns_pipeline: bool, **kwargs: Any) -> None:
        super().__init__(children=[camera, gauge], **kwargs)
        self.add_class("emow-live")
        self.camera = camera
        self.gauge = gauge
        self.pipeline = pipeline
        self._closed = False
        self._views: list[Callable[[FrameResult], None]] = [gauge.update]
        if isinstance(camera, KernelCamera):
            self.session = Session(pipeline, camera.source, owns_pipeline=owns_pipeline, on_status=camera.show_status)
            self._views.insert(0, camera.update)
            pipeline.add_listener(camera.update, slot="kernel-camera")
        else:
            self.session = Session(pipeline, camera, owns_pipeline=owns_pipeline)
            camera.link = gauge.link = gauge.model_id  # a box clicked on the preview picks the gauge's face
        pipeline.add_listener(gauge.update, slot="gauge")  # a re-run cell's gauge on this pipeline replaces this one
        self._views.append(self._follow)
        pipeline.add_listener(self._follow, slot="gauge-status")
        gauge.status = WAITING
        self.running = Running()
        """This view's mark among the views running on this computer (:class:`~emowidgets.startup.Running`)."""
        self._looked = time.monotonic()
        gauge.notice = others_text(self.running.others())

    def _display_(self) -> Any:
        """How marimo shows the view: the camera (a browser source) and the gauge, side by side."""
        return marimo_parts([self.camera, self.gauge], across=True)

    def _follow(self, result: FrameResult) -> None:
        """A pipeline listener: the gauge's status while the classifier warms up, and the other-views warning."""
        status = WARMING if self.pipeline.classifier.warming_up else ""
        if self.gauge.status != status and self.gauge.status != "stopped":
            self.gauge.status = status
        now = time.monotonic()
        if now - self._looked >= OTHERS_EVERY_S:
            self._looked = now
            self.gauge.notice = others_text(self.running.others())

    def close(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        """Stop processing and the camera (the browser, or the kernel, releases it); the gauge stays, saying
        ``"stopped"``, in place of the whole view; again is a no-op.

        Quiet at interpreter exit: ipywidgets' ``__del__`` calls it then, when this module's globals may already be
        gone (``_finalizing`` is bound at definition for that) and its comms are dropped: nothing is left to close.
        """
        if getattr(self, "_closed", True) or _finalizing():
            return
        self._closed = True
        for view in self._views:  # a pipeline passed in outlives the view: stop feeding its widgets
            self.pipeline.remove_listener(view)
        self.session.close()
        self.running.close()
        if isinstance(self.camera, KernelCamera):
            self.camera.close()
        self.gauge.status = "stopped"
        self.gauge.notice = ""
        self.children = (self.gauge,)


def _call_site() -> str:
    """Where ``live()`` was called from: the notebook cell's id when the kernel knows it, else file and line."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        cell = shell.kernel.get_parent()["metadata"].get("cellId") if shell is not None else None
        if cell:
            return f"cell {cell}"
    except (ImportError, AttributeError, KeyError, TypeError):
        pass
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def live(source: str | MediaStream | None = None, model: str = "main", *,
         detector: Literal["short", "full", "gallery"] = "short", pipeline: Pipeline | None = None,
         aggregate: Literal["largest", "mean"] = "largest", auto_calibrate: bool = True,
         device: int | str = 0, **camera_options: Any) -> LiveView:
    """Start live emotion recognition on a camera, the screen or an ipywebrtc stream.

    Args:
        source: ``None``/``"camera"`` (the browser's camera), ``"screen"``, an ipywebrtc ``MediaStream``
            widget, or ``"kernel"``: the camera ``device`` of the computer the kernel runs on, read there
            (for VS Code and other pages without camera access; no preview).
        model: classifier weights, ``"main"``, ``"fast"`` or a weights path.
        detector: ``"short"`` (webcam distance), ``"full"`` (small, distant faces) or ``"gallery"`` (a shared
            video-call gallery); the same knob as ``classroom()``'s (:func:`~emowidgets.sources.entry_options`).
        pipeline: an existing pipeline to use instead of a new one (``model`` and ``detector`` are then
            ignored); ``close()`` leaves it open.
        aggregate: what the gauge shows for several faces: the ``"largest"`` face or the ``"mean"`` of all.
        auto_calibrate: auto-calibrate each face: centre it on its own resting face, learned from its first
            frames without labels (:mod:`emowidgets.autocalib`; the gauge says "learning this face's resting
            expression" meanwhile); ``False`` scores every face with the base model alone. Needs the model
            file's neutral reference (the shipped models and ``emowidgets train`` exports carry one). Ignored
            with ``pipeline`` (set ``PipelineOptions.auto_calibrate`` there).
        device: with ``source="kernel"``: the camera index (``0``: the first) or a path/URL OpenCV opens.
        **camera_options: :class:`CameraWidget` traits (:data:`BROWSER_OPTIONS`: ``width``, ``height``,
            ``quality``, ...); with ``source="kernel"``, :class:`~emowidgets.sources.CameraSource` arguments
            (``size``).

    Running ``live()`` again from the same notebook cell (or line of a script) closes the view it made there
    before, pipeline and all, so a re-run cell takes the old one's place instead of adding a pipeline.

    Returns:
        A :class:`LiveView` box; display it, and ``close()`` it (or use ``with``) to stop.

    Raises:
        OptionsError: a source, detector, model name or camera option (name or value) that is not allowed,
            checked before a previous view is closed, the model loads or any thread starts (source names are
            case-insensitive).
        ModelFileError: a weights file that is missing or unusable.
        ClosedError: ``pipeline`` is closed.
        CameraError: ``source="kernel"`` and the kernel cannot open ``device``.
    """
    source = check_source(source, (*SOURCES, "kernel"), default=True)
    kernel = source == "kernel"
    if kernel:
        check_camera_options(camera_options, KERNEL_OPTIONS, 'live("kernel")', " (size=(width, height))")
    else:
        check_camera_options(camera_options, BROWSER_OPTIONS, "live() with a browser source")
        check_camera_settings(camera_options)
    if aggregate not in ("largest", "mean"):
        raise OptionsError(f"aggregate must be 'largest' or 'mean', not {aggregate!r}")
    options = entry_options(detector, model, auto_calibrate=auto_calibrate)  # checked even when pipeline= is given
    site = _call_site()
    previous = _views.pop(site, None)
    if previous is not None and (old := previous()) is not None:
        old.close()  # a re-run cell: free the old pipeline before loading a new one
    owns = pipeline is None
    if pipeline is None:
        pipeline = start_pipeline(options)
    try:
        camera: CameraWidget | KernelCamera
        if kernel:
            camera = KernelCamera(CameraSource(device, **camera_options))
        else:
            camera = CameraWidget(source, pipeline=pipeline, **camera_options)
        gauge = EmotionGauge(aggregate=aggregate)
        view = LiveView(camera, gauge, pipeline, owns_pipeline=owns)
    except BaseException:
        if owns:
            pipeline.close()
        raise
    view.session.start()
    _views[site] = weakref.ref(view)
    return view

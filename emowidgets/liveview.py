"""``emowidgets.live()``: camera preview with face boxes next to an emotion gauge, in one call.

``live("kernel")`` reads the camera in the kernel instead (:class:`~emowidgets.sources.CameraSource`), for
frontends whose page cannot open one; it shows a status line instead of a preview: no picture leaves the kernel.
"""

from __future__ import annotations

import html
import time
from typing import Any, Literal

import ipywidgets
import traitlets
from ipywebrtc import MediaStream

from emowidgets.detect import DetectorOptions
from emowidgets.errors import OptionsError
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.session import Session
from emowidgets.sources import CameraSource
from emowidgets.vocab import FrameResult
from emowidgets.widgets import CameraWidget, EmotionGauge, check_source


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


class LiveView(ipywidgets.HBox):  # type: ignore[misc]
    """The box ``live()`` returns; ``camera``, ``gauge``, ``pipeline`` and ``session`` (the
    :class:`~emowidgets.session.Session` wiring them) are its parts.

    ``close()`` stops the worker thread, the camera and both widgets.
    """

    def __init__(self, camera: CameraWidget | KernelCamera, gauge: EmotionGauge, pipeline: Pipeline, *,
                 owns_pipeline: bool, **kwargs: Any) -> None:
        super().__init__(children=[camera, gauge], **kwargs)
        self.add_class("emow-live")
        self.camera = camera
        self.gauge = gauge
        self.pipeline = pipeline
        if isinstance(camera, KernelCamera):
            self.session = Session(pipeline, camera.source, owns_pipeline=owns_pipeline, on_status=camera.show_status)
            self.session.add_view(camera.update)
        else:
            self.session = Session(pipeline, camera, owns_pipeline=owns_pipeline)
        self.session.add_view(gauge.update)

    def close(self) -> None:
        """Stop processing and close the widgets (the browser, or the kernel, releases the camera)."""
        self.session.close()
        if isinstance(self.camera, KernelCamera):
            self.camera.close()
        self.gauge.close()
        super().close()


def live(source: str | MediaStream | None = None, model: str = "main", *,
         detector: Literal["short", "full"] = "short", pipeline: Pipeline | None = None,
         aggregate: Literal["largest", "mean"] = "largest", auto_calibrate: bool = False,
         device: int | str = 0, **camera_options: Any) -> LiveView:
    """Start live emotion recognition on a camera, the screen or an ipywebrtc stream.

    Args:
        source: ``None``/``"camera"`` (the browser's camera), ``"screen"``, an ipywebrtc ``MediaStream``
            widget, or ``"kernel"``: the camera ``device`` of the computer the kernel runs on, read there
            (for VS Code and other pages without camera access; no preview).
        model: classifier weights, ``"main"``, ``"fast"`` or a weights path.
        detector: face detector model, ``"short"`` (webcam distance) or ``"full"`` (small, distant faces).
        pipeline: an existing pipeline to use instead of a new one (``model`` and ``detector`` are then
            ignored); ``close()`` leaves it open.
        aggregate: what the gauge shows for several faces: the ``"largest"`` face or the ``"mean"`` of all.
        auto_calibrate: auto-calibrate each face: centre it on its own resting face, from its first
            frames, without labels (:mod:`emowidgets.autocalib`; off by default: measured on posed
            photos only). Ignored with ``pipeline`` (set ``PipelineOptions.auto_calibrate`` there).
        device: with ``source="kernel"``: the camera index (``0``: the first) or a path/URL OpenCV opens.
        **camera_options: :class:`CameraWidget` traits (``width``, ``height``, ``quality``, ...); with
            ``source="kernel"``, :class:`~emowidgets.sources.CameraSource` arguments (``size``).

    Returns:
        A :class:`LiveView` box; display it, and ``close()`` it to stop.

    Raises:
        OptionsError: a source, model name or setting that is not allowed (checked before anything starts).
        ModelFileError: a weights file that is missing or unusable.
        ClosedError: ``pipeline`` is closed.
        CameraError: ``source="kernel"`` and the kernel cannot open ``device``.
    """
    kernel = isinstance(source, str) and source == "kernel"
    if not kernel:
        check_source(source)
    if aggregate not in ("largest", "mean"):
        raise OptionsError(f"aggregate must be 'largest' or 'mean', not {aggregate!r}")
    owns = pipeline is None
    if pipeline is None:
        options = PipelineOptions(detector=DetectorOptions(model=detector),
                                  classifier=ClassifierOptions(model=model), auto_calibrate=auto_calibrate)
        pipeline = Pipeline.create_from_options(options, warmup=True)
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
    return view

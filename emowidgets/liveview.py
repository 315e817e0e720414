"""``emowidgets.live()``: camera preview with face boxes next to an emotion gauge, in one call.

``live("kernel")`` reads the camera in the kernel instead (:class:`~emowidgets.sources.CameraSource`), for
frontends whose page cannot open one; it shows a status line instead of a preview: no picture leaves the kernel.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets
import traitlets
from ipywebrtc import MediaStream

from emowidgets.detect import DetectorOptions
from emowidgets.errors import EmowidgetsError
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import FrameResult, Pipeline, PipelineOptions
from emowidgets.sources import CameraSource, SourceState
from emowidgets.widgets import CameraWidget, EmotionGauge

log = logging.getLogger("emowidgets.liveview")


class KernelCamera(ipywidgets.HTML):  # type: ignore[misc]
    """A camera read in the kernel, feeding a pipeline on its own thread; shows one status line, no picture.

    Args:
        source: the opened camera.
        pipeline: processes each frame (its worker thread is not used: frames arrive decoded).
        on_result: called with each result on the reading thread (a gauge's ``update``).
    """

    status = traitlets.Unicode("starting", help="starting, running, ended, stopped or failed").tag(sync=True)

    def __init__(self, source: CameraSource, pipeline: Pipeline,
                 on_result: Callable[[FrameResult], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("emow-kernel-camera")
        self.source = source
        self._pipeline = pipeline
        self._on_result = on_result
        self._times: list[float] = []
        self._shown = 0.0
        self._thread = threading.Thread(target=self._run, name="emowidgets-kernel-camera", daemon=True)
        self._show("starting")
        self._thread.start()

    def _show(self, status: str, detail: str = "") -> None:
        self.status = status
        text = f"kernel camera {self.source.device!r}: {status}" + (f" · {detail}" if detail else "")
        self.value = f'<span class="emow-kernel-status" data-status="{status}">{html.escape(text)}</span>'

    def _result(self, result: FrameResult) -> None:
        if self._on_result is not None:
            self._on_result(result)
        now = time.monotonic()
        self._times = [t for t in self._times if now - t <= 1.0] + [now]
        if now - self._shown >= 0.5:  # at most two status updates a second
            self._shown = now
            self._show("running", f"{len(self._times)} frames/s, {len(result.boxes)} face(s)")

    def _run(self) -> None:
        try:
            self.source.run(self._pipeline, self._result)
        except EmowidgetsError:
            pass  # the source records state and error
        except Exception as exc:  # shown in the status line; the kernel stays usable
            log.exception("kernel camera failed")
            self.source.state, self.source.error = SourceState.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            self.source.close()
        self._show(self.source.state.value, self.source.error)

    def close(self) -> None:
        """Stop reading, release the camera and close the widget."""
        self.source.stop()
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)
        super().close()


class LiveView(ipywidgets.HBox):  # type: ignore[misc]
    """The box ``live()`` returns; ``camera``, ``gauge`` and ``pipeline`` are its parts.

    ``close()`` stops the worker thread, the camera and both widgets.
    """

    def __init__(self, camera: CameraWidget | KernelCamera, gauge: EmotionGauge, pipeline: Pipeline, *,
                 owns_pipeline: bool, **kwargs: Any) -> None:
        super().__init__(children=[camera, gauge], **kwargs)
        self.add_class("emow-live")
        self.camera = camera
        self.gauge = gauge
        self.pipeline = pipeline
        self._owns_pipeline = owns_pipeline
        pipeline.add_listener(self._on_result)  # results of the browser's frames; a KernelCamera feeds the gauge

    def _on_result(self, result: FrameResult) -> None:
        self.gauge.update(result)

    def close(self) -> None:
        """Stop processing and close the widgets (the browser releases the camera)."""
        self.pipeline.remove_listener(self._on_result)
        self.camera.close()
        self.gauge.close()
        if self._owns_pipeline:
            self.pipeline.close()
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
        **camera_options: :class:`CameraWidget` traits (``width``, ``height``, ``quality``, ...).

    Returns:
        A :class:`LiveView` box; display it, and ``close()`` it to stop.

    Raises:
        CameraError: ``source="kernel"`` and the kernel cannot open ``device``.
    """
    owns = pipeline is None
    if pipeline is None:
        options = PipelineOptions(detector=DetectorOptions(model=detector),
                                  classifier=ClassifierOptions(model=model), auto_calibrate=auto_calibrate)
        pipeline = Pipeline.create_from_options(options, warmup=True)
    gauge = EmotionGauge(aggregate=aggregate)
    if source == "kernel":
        try:
            kernel_camera = KernelCamera(CameraSource(device, **camera_options), pipeline, gauge.update)
        except EmowidgetsError:
            gauge.close()
            if owns:
                pipeline.close()
            raise
        return LiveView(kernel_camera, gauge, pipeline, owns_pipeline=owns)
    camera = CameraWidget(source, pipeline=pipeline, **camera_options)
    pipeline.start()
    return LiveView(camera, gauge, pipeline, owns_pipeline=owns)

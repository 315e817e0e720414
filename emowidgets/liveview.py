"""``emowidgets.live()``: camera preview with face boxes next to an emotion gauge, in one call."""

from __future__ import annotations

from typing import Any, Literal

import ipywidgets
from ipywebrtc import MediaStream

from emowidgets.detect import DetectorOptions
from emowidgets.errors import OptionsError
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.session import Session
from emowidgets.widgets import CameraWidget, EmotionGauge, check_source


class LiveView(ipywidgets.HBox):  # type: ignore[misc]
    """The box ``live()`` returns; ``camera``, ``gauge``, ``pipeline`` and ``session`` (the
    :class:`~emowidgets.session.Session` wiring them) are its parts.

    ``close()`` stops the worker thread, the camera and both widgets.
    """

    def __init__(self, camera: CameraWidget, gauge: EmotionGauge, pipeline: Pipeline, *, owns_pipeline: bool,
                 **kwargs: Any) -> None:
        super().__init__(children=[camera, gauge], **kwargs)
        self.add_class("emow-live")
        self.camera = camera
        self.gauge = gauge
        self.pipeline = pipeline
        self.session = Session(pipeline, camera, owns_pipeline=owns_pipeline)
        self.session.add_view(gauge.update)

    def close(self) -> None:
        """Stop processing and close the widgets (the browser releases the camera)."""
        self.session.close()
        self.gauge.close()
        super().close()


def live(source: str | MediaStream | None = None, model: str = "main", *,
         detector: Literal["short", "full"] = "short", pipeline: Pipeline | None = None,
         aggregate: Literal["largest", "mean"] = "largest", auto_calibrate: bool = False,
         **camera_options: Any) -> LiveView:
    """Start live emotion recognition on a camera, the screen or an ipywebrtc stream.

    Args:
        source: ``None``/``"camera"``, ``"screen"`` or an ipywebrtc ``MediaStream`` widget.
        model: classifier weights, ``"main"``, ``"fast"`` or a weights path.
        detector: face detector model, ``"short"`` (webcam distance) or ``"full"`` (small, distant faces).
        pipeline: an existing pipeline to use instead of a new one (``model`` and ``detector`` are then
            ignored); ``close()`` leaves it open.
        aggregate: what the gauge shows for several faces: the ``"largest"`` face or the ``"mean"`` of all.
        auto_calibrate: auto-calibrate each face: centre it on its own resting face, from its first
            frames, without labels (:mod:`emowidgets.autocalib`; off by default: measured on posed
            photos only). Ignored with ``pipeline`` (set ``PipelineOptions.auto_calibrate`` there).
        **camera_options: :class:`CameraWidget` traits (``width``, ``height``, ``quality``, ...).

    Returns:
        A :class:`LiveView` box; display it, and ``close()`` it to stop.

    Raises:
        OptionsError: a source, model name or setting that is not allowed (checked before anything starts).
        ModelFileError: a weights file that is missing or unusable.
        ClosedError: ``pipeline`` is closed.
    """
    check_source(source)
    if aggregate not in ("largest", "mean"):
        raise OptionsError(f"aggregate must be 'largest' or 'mean', not {aggregate!r}")
    owns = pipeline is None
    if pipeline is None:
        options = PipelineOptions(detector=DetectorOptions(model=detector),
                                  classifier=ClassifierOptions(model=model), auto_calibrate=auto_calibrate)
        pipeline = Pipeline.create_from_options(options, warmup=True)
    try:
        camera = CameraWidget(source, pipeline=pipeline, **camera_options)
        gauge = EmotionGauge(aggregate=aggregate)
        view = LiveView(camera, gauge, pipeline, owns_pipeline=owns)
    except BaseException:
        if owns:
            pipeline.close()
        raise
    view.session.start()
    return view

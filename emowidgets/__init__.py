"""emowidgets: live face-emotion recognition widgets for Jupyter.

Imports are lazy so ``import emowidgets`` is instant; the heavy stack (JAX, MediaPipe) loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "EMOTIONS": "emowidgets.vocab",
    "EmowidgetsError": "emowidgets.errors",
    "FrameError": "emowidgets.errors",
    "VideoFileError": "emowidgets.errors",
    "ModelFileError": "emowidgets.errors",
    "DataFileError": "emowidgets.errors",
    "NoFaceError": "emowidgets.errors",
    "OptionsError": "emowidgets.errors",
    "ClosedError": "emowidgets.errors",
    "AdapterError": "emowidgets.errors",
    "CameraError": "emowidgets.errors",
    "BusyError": "emowidgets.errors",
    "DetectorOptions": "emowidgets.detect",
    "FaceDetector": "emowidgets.detect",
    "ClassifierOptions": "emowidgets.infer",
    "EmotionClassifier": "emowidgets.infer",
    "Pipeline": "emowidgets.pipeline",
    "PipelineOptions": "emowidgets.pipeline",
    "PipelineState": "emowidgets.pipeline",
    "FrameResult": "emowidgets.vocab",
    "evaluate": "emowidgets.tools.evaluation",
    "live": "emowidgets.liveview",
    "LiveView": "emowidgets.liveview",
    "CameraWidget": "emowidgets.widgets",
    "EmotionGauge": "emowidgets.widgets",
    "AdapterOptions": "emowidgets.adapter_fit",
    "AdapterSet": "emowidgets.adapter",
    "fit_adapter": "emowidgets.adapter_fit",
    "AutoCalibrationOptions": "emowidgets.autocalib",
    "load_adapter": "emowidgets.adapter_io",
    "save_adapter": "emowidgets.adapter_io",
    "CalibrationWidget": "emowidgets.calibration",
    "ClassView": "emowidgets.classview",
    "classroom": "emowidgets.lesson",
}
__all__ = [
    "EMOTIONS",
    "AdapterError",
    "AdapterOptions",
    "AdapterSet",
    "AutoCalibrationOptions",
    "BusyError",
    "CalibrationWidget",
    "CameraError",
    "CameraWidget",
    "ClassView",
    "ClassifierOptions",
    "ClosedError",
    "DataFileError",
    "DetectorOptions",
    "EmotionClassifier",
    "EmotionGauge",
    "EmowidgetsError",
    "FaceDetector",
    "FrameError",
    "FrameResult",
    "LiveView",
    "ModelFileError",
    "NoFaceError",
    "OptionsError",
    "Pipeline",
    "PipelineOptions",
    "PipelineState",
    "VideoFileError",
    "__version__",
    "classroom",
    "evaluate",
    "fit_adapter",
    "live",
    "load_adapter",
    "save_adapter",
]

if TYPE_CHECKING:
    from emowidgets.adapter import AdapterSet
    from emowidgets.adapter_fit import AdapterOptions, fit_adapter
    from emowidgets.adapter_io import load_adapter, save_adapter
    from emowidgets.autocalib import AutoCalibrationOptions
    from emowidgets.calibration import CalibrationWidget
    from emowidgets.classview import ClassView
    from emowidgets.detect import DetectorOptions, FaceDetector
    from emowidgets.errors import (
        AdapterError,
        BusyError,
        CameraError,
        ClosedError,
        DataFileError,
        EmowidgetsError,
        FrameError,
        ModelFileError,
        NoFaceError,
        OptionsError,
        VideoFileError,
    )
    from emowidgets.infer import ClassifierOptions, EmotionClassifier
    from emowidgets.lesson import classroom
    from emowidgets.liveview import LiveView, live
    from emowidgets.pipeline import Pipeline, PipelineOptions, PipelineState
    from emowidgets.tools.evaluation import evaluate
    from emowidgets.vocab import EMOTIONS, FrameResult
    from emowidgets.widgets import CameraWidget, EmotionGauge


def _register_ipython_errors() -> None:
    """In IPython, show this package's errors as one line (see :func:`emowidgets.entry.register_ipython_errors`)."""
    import sys

    if "IPython" in sys.modules:
        from emowidgets.entry import register_ipython_errors

        register_ipython_errors()


_register_ipython_errors()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emowidgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

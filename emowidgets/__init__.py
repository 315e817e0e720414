"""emowidgets: live face-emotion recognition widgets for Jupyter.

Imports are lazy so ``import emowidgets`` is instant; the heavy stack (JAX, MediaPipe) loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "EMOTIONS": "emowidgets.model",
    "EmowidgetsError": "emowidgets.errors",
    "FrameError": "emowidgets.errors",
    "ModelFileError": "emowidgets.errors",
    "DataFileError": "emowidgets.errors",
    "NoFaceError": "emowidgets.errors",
    "DetectorOptions": "emowidgets.detect",
    "FaceDetector": "emowidgets.detect",
    "ClassifierOptions": "emowidgets.infer",
    "EmotionClassifier": "emowidgets.infer",
    "Pipeline": "emowidgets.pipeline",
    "PipelineOptions": "emowidgets.pipeline",
    "FrameResult": "emowidgets.pipeline",
    "evaluate": "emowidgets.evaluate",
}
__all__ = [
    "EMOTIONS",
    "ClassifierOptions",
    "DataFileError",
    "DetectorOptions",
    "EmotionClassifier",
    "EmowidgetsError",
    "FaceDetector",
    "FrameError",
    "FrameResult",
    "ModelFileError",
    "NoFaceError",
    "Pipeline",
    "PipelineOptions",
    "__version__",
    "evaluate",
]

if TYPE_CHECKING:
    from emowidgets.detect import DetectorOptions, FaceDetector
    from emowidgets.errors import DataFileError, EmowidgetsError, FrameError, ModelFileError, NoFaceError
    from emowidgets.evaluate import evaluate
    from emowidgets.infer import ClassifierOptions, EmotionClassifier
    from emowidgets.model import EMOTIONS
    from emowidgets.pipeline import FrameResult, Pipeline, PipelineOptions


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emowidgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

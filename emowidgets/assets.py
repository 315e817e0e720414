"""Where the shipped model files are: the one place that knows.

The emotion classifiers and MediaPipe's face detectors ship inside the package as ``emowidgets.weights``
(the repository's top-level ``weights/``, mapped into the wheel by ``pyproject.toml``), found through
:mod:`importlib.resources` so a wheel, an index install and an editable checkout behave the same.
``$EMOWIDGETS_WEIGHTS`` names another folder holding the same file names (read on each call).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from emowidgets.errors import ModelFileError, OptionsError

WEIGHTS_ENV = "EMOWIDGETS_WEIGHTS"
MODEL_FILES = {"main": "emotion_main.safetensors", "fast": "emotion_fast.safetensors"}
DETECTOR_FILES = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range_sparse.tflite",
}


def weights_dir() -> Path:
    """The folder of model files: ``$EMOWIDGETS_WEIGHTS`` if set, else the package's ``weights``.

    Raises:
        ModelFileError: the package is not installed as plain files (e.g. imported from a zip), which
            MediaPipe cannot read its detector from.
    """
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override)
    packaged = resources.files("emowidgets.weights")
    if not isinstance(packaged, Path):
        raise ModelFileError(f"emowidgets' model files are not plain files ({packaged}); install emowidgets "
                             f"with pip, or point ${WEIGHTS_ENV} at a folder holding them")
    return packaged


def model_path(model: str) -> Path:
    """``"main"``/``"fast"`` -> the shipped classifier file; anything else is taken as a path."""
    return weights_dir() / MODEL_FILES[model] if model in MODEL_FILES else Path(model)


def detector_path(model: str) -> Path:
    """The MediaPipe face detector file of ``model`` (``"short"`` or ``"full"``).

    Raises:
        OptionsError: ``model`` is not a detector name.
        ModelFileError: the file is missing.
    """
    if model not in DETECTOR_FILES:
        raise OptionsError(f"detector model must be one of {sorted(DETECTOR_FILES)}, not {model!r}")
    path = weights_dir() / DETECTOR_FILES[model]
    if not path.is_file():
        raise ModelFileError(f"face detector model missing: {path} (reinstall emowidgets, or check "
                             f"${WEIGHTS_ENV})")
    return path

"""Model file locations: the package's own files by default, ``$EMOWIDGETS_WEIGHTS`` instead when set."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import IMAGES, ROOT
from PIL import Image

from emowidgets.assets import DETECTOR_FILES, MODEL_FILES, detector_path, model_path, weights_dir
from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import ModelFileError


def test_shipped_files_are_found_through_the_package(monkeypatch):
    monkeypatch.delenv("EMOWIDGETS_WEIGHTS", raising=False)
    assert weights_dir().resolve() == (ROOT / "weights").resolve()  # editable install: the checkout's weights/
    for name in MODEL_FILES:
        assert model_path(name).is_file()
    for name in DETECTOR_FILES:
        assert detector_path(name).is_file()
    assert model_path("my_model.safetensors").name == "my_model.safetensors"


def test_environment_variable_overrides_and_missing_files_say_where(monkeypatch, tmp_path):
    monkeypatch.setenv("EMOWIDGETS_WEIGHTS", str(tmp_path))
    assert model_path("main") == tmp_path / "emotion_main.safetensors"
    with pytest.raises(ModelFileError, match=rf"face detector model missing: {tmp_path}.*EMOWIDGETS_WEIGHTS"):
        FaceDetector.create_from_options(DetectorOptions(model="short"))
    shutil.copy(ROOT / "weights" / DETECTOR_FILES["short"], tmp_path)
    with FaceDetector.create_from_options(DetectorOptions(model="short")) as detector:
        assert len(detector.detect(np.asarray(Image.open(IMAGES / "single_man_smiling.jpg")))) == 1
    with pytest.raises(ValueError, match=r"one of \['full', 'short'\]"):
        detector_path("long")

"""Gallery presets: detection recall on galleries built from the real clips/photos, the group photo,
and a classifier that never recompiles as the number of faces changes."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import IMAGES, ROOT

from emowidgets.decode import decode
from emowidgets.detect import FaceDetector
from emowidgets.infer import EmotionClassifier
from emowidgets.pipeline import Pipeline
from emowidgets.sources import detector_for, pipeline_options

sys.path.insert(0, str(ROOT / "benchmarks"))
from gallery_util import build_gallery, grid_for


@pytest.fixture(scope="module")
def gallery_detector():
    with FaceDetector.create_from_options(detector_for("gallery")) as det:
        yield det


def test_grid_layout():
    assert grid_for(25) == (5, 5) and grid_for(36) == (6, 6) and grid_for(5) == (3, 2)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
def test_gallery_preset_finds_90_percent_of_25_faces(gallery_detector: FaceDetector, size: tuple[int, int]):
    gallery = build_gallery(25, size, frames=3)
    assert gallery.frames.shape == (3, size[1], size[0], 3)
    found, false_pos = zip(*(gallery.score(gallery_detector.detect(f).boxes) for f in gallery.frames), strict=True)
    assert np.mean(found) / 25 >= 0.9
    assert max(false_pos) <= 2


def test_camera_preset_is_one_short_range_pass():
    options = detector_for("camera")
    assert options.model == "short" and options.tiles == (1, 1)
    with pytest.raises(ValueError, match="camera"):
        detector_for("zoom")


def test_group_photo_has_five_faces(gallery_detector: FaceDetector):
    rgb = decode((IMAGES / "group_5_people.jpg").read_bytes())
    assert len(gallery_detector.detect(rgb)) == 5


def test_compile_count_constant_as_faces_vary(gallery_detector: FaceDetector):
    options = pipeline_options("gallery", "fast")
    classifier = EmotionClassifier.create_from_options(options.classifier)
    gallery_pipeline = Pipeline(gallery_detector, classifier, options)
    classifier.warmup(background=False)
    compiled = classifier.compile_count
    counts = {}
    for faces in (2, 4, 9, 16, 25, 36):
        frame = build_gallery(faces, (1280, 720), frames=1).frames[0]
        counts[faces] = len(gallery_pipeline.process_array(frame).track_ids)
    assert all(abs(counts[n] - n) <= 2 for n in (2, 4, 9, 16, 25)) and counts[36] >= 28, counts
    assert classifier.compile_count == compiled

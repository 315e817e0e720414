"""Face detection and cropping on the real photos and clips in ../shared/assets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import CLIPS, IMAGES, video_frames
from PIL import Image

from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.preprocess import crop_faces

# Face counts from ../shared/assets/images/README.md (full-range model, confidence 0.5).
PHOTOS = [("group_5_people.jpg", 5), ("single_obama_smiling.jpg", 1), ("single_biden_neutral.jpg", 1),
          ("single_astronaut.png", 1), ("single_cameraman_gray.png", 1), ("single_man_smiling.jpg", 1),
          ("pair_pyfeat_neutral.jpg", 1), ("pair_franck_smile.jpg", 1)]


@pytest.fixture(scope="module")
def full():
    with FaceDetector.create_from_options(DetectorOptions(model="full")) as det:
        yield det


@pytest.fixture(scope="module")
def short():
    with FaceDetector.create_from_options(DetectorOptions(model="short")) as det:
        yield det


@pytest.mark.parametrize(("name", "faces"), PHOTOS, ids=[p[0] for p in PHOTOS])
def test_real_photos(full, name, faces):
    image = np.asarray(Image.open(IMAGES / name))  # the gray PNG stays 1-channel: the detector must cope
    det = full.detect(image)
    assert len(det) == faces
    assert det.boxes.shape == (faces, 4) and det.keypoints.shape == (faces, 6, 2)
    assert (det.scores >= 0.5).all()


def test_gray_frame_does_not_break_detector(short):
    gray = np.asarray(Image.open(IMAGES / "single_cameraman_gray.png"))
    assert gray.ndim == 2
    assert len(short.detect(gray)) == 1
    assert len(short.detect(np.asarray(Image.open(IMAGES / "single_astronaut.png").convert("RGB")))) == 1


def test_blank_frame_has_no_faces(short):
    det = short.detect(np.full((480, 640, 3), 128, np.uint8))
    assert len(det) == 0 and det.boxes.shape == (0, 4)


@pytest.mark.parametrize(("clip", "faces"), [("single_face.mp4", 1), ("multi_face.mp4", 4)])
def test_clip_frames(short, clip, faces):
    frames = video_frames(CLIPS / clip, every=25)
    assert [len(short.detect(f)) for f in frames] == [faces] * len(frames)


def test_tiled_mode_maps_boxes_back(full):
    """The 3x2 gallery: tiled detection finds all 6 faces and each box lies in its own tile."""
    frame = video_frames(CLIPS / "multi_face_3x2.mp4", every=50)[0]
    tiled = FaceDetector.create_from_options(DetectorOptions(model="full", tiles=(2, 3)))
    with tiled:
        det = tiled.detect(frame)
    assert len(det) == 6
    centres = det.boxes[:, :2] + det.boxes[:, 2:] / 2
    cells = {(int(cx // 320), int(cy // 240)) for cx, cy in centres}
    assert len(cells) == 6


def test_crops_are_aligned_faces(full):
    image = np.asarray(Image.open(IMAGES / "group_5_people.jpg"))
    det = full.detect(image)
    crops = crop_faces(image, det, "full")
    assert crops.shape == (5, 48, 48) and crops.dtype == np.float32
    assert crops.min() >= 0.0 and crops.max() <= 1.0
    # eyes are placed on the same row: the upper-middle band is darker-textured than a flat patch
    assert crops.std(axis=(1, 2)).min() > 0.05
    assert crop_faces(image, det.take(np.zeros(0, np.int64)), "full").shape == (0, 48, 48)


def test_unclosed_detector_exits_quietly():
    """A script that never closes its detector must not print MediaPipe's teardown traceback at exit."""
    code = "from emowidgets.detect import FaceDetector\nd = FaceDetector.create_from_options()\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr


def _pattern_frames(tmp_path, name: str = "testsrc2") -> np.ndarray:
    """10 s of an ffmpeg test pattern at 1280x720, 5 fps: moving shapes and colour fields, no face."""
    path = tmp_path / f"{name}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{name}=size=1280x720:rate=5", "-t", "10",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return video_frames(path)


def test_second_look_passes_faces_and_refuses_test_pattern_phantoms(tmp_path):
    """The short-range model in 3x3 tiles finds "faces" in testsrc2; the full-range check refuses all of them,
    and confirms every face of the shared 3x2 gallery clip."""
    from emowidgets.sources import detector_for

    with FaceDetector.create_from_options(detector_for("gallery")) as gallery:
        phantoms = [(frame, gallery.detect(frame).boxes) for frame in _pattern_frames(tmp_path)]
        assert sum(len(boxes) for _, boxes in phantoms) >= 5, "testsrc2 no longer makes phantoms to refuse"
        assert all((gallery.check(frame, boxes) < 0.5).all() for frame, boxes in phantoms if len(boxes))
        for frame in video_frames(CLIPS / "multi_face_3x2.mp4", every=30):
            boxes = gallery.detect(frame).boxes
            assert len(boxes) >= 6 and (gallery.check(frame, boxes) >= 0.5).all()


def test_tiled_search_finds_a_big_face_whole(short):
    """A face larger than a 3x3 tile (sad_to_happy.mp4 at 720p) is one box, not the pieces the tiles cut."""
    from emowidgets.sources import detector_for

    with FaceDetector.create_from_options(detector_for("gallery")) as gallery:
        counts = [len(gallery.detect(frame)) for frame in video_frames(CLIPS / "sad_to_happy.mp4", every=10)]
    assert counts and all(n == 1 for n in counts), counts

"""Accuracy of the emotion model on labelled images: face crops directly, or through detection first.

This is what ``emowidgets evaluate`` prints; other tooling depends on its JSON keys.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import DataFileError
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import CROP_SIZE, EMOTIONS
from emowidgets.preprocess import crop_faces
from emowidgets.vocab import NEGATIVE

DETECT_MIN_SIDE = 192


def load_labelled(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``SPLIT_x``/``SPLIT_y`` (or ``x``/``y``) from an ``.npz``: uint8 images ``N x H x W``, labels 0-6.

    Raises:
        DataFileError: missing file or keys, wrong dtype/shape, labels outside 0-6.
    """
    path = Path(path)
    xk, yk = (f"{split}_x", f"{split}_y") if split else ("x", "y")
    if not path.is_file():
        raise DataFileError(f"data file not found: {path}")
    with path.open("rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise DataFileError(f"{path} is not a readable .npz file (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if xk not in data.files or yk not in data.files:
                raise DataFileError(f"{path} has no {xk!r}/{yk!r} arrays (it has: {', '.join(data.files)})")
            x, y = data[xk], data[yk]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(f"{path} is not a readable .npz file: {exc}") from exc
    if x.dtype != np.uint8 or x.ndim != 3:
        raise DataFileError(f"{xk} must be uint8 grayscale images N x H x W, got {x.dtype} {x.shape}")
    if len(x) == 0:
        raise DataFileError(f"{path} holds no images under {xk!r}: nothing to evaluate")
    if y.ndim != 1 or len(y) != len(x):
        raise DataFileError(f"{yk} must be a vector of {len(x)} labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() > len(EMOTIONS) - 1)):
        raise DataFileError(f"{yk} holds labels outside 0-{len(EMOTIONS) - 1} (FER2013 order: {', '.join(EMOTIONS)})")
    return x, y.astype(np.int64)


def _as_crops(x: np.ndarray) -> np.ndarray:
    if x.shape[1:] == (CROP_SIZE, CROP_SIZE):
        return x.astype(np.float32) / 255.0
    return np.stack([np.asarray(Image.fromarray(im).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BILINEAR))
                     for im in x]).astype(np.float32) / 255.0


def detect_largest_crop(detector: FaceDetector, gray: np.ndarray) -> np.ndarray | None:
    """Run detection on one grayscale image and return the largest face's crop, or None.

    The image is searched as the live path searches a frame; only where that finds nothing is it searched
    again with an edge-replicated border of a quarter of its height, the context BlazeFace needs around a
    face that fills a tight crop (such as FER2013's). Small images are upscaled to
    ``DETECT_MIN_SIDE`` first. A border on every image loses faces that fill a photo (issue 23).
    """
    img = Image.fromarray(gray)
    if min(img.size) < DETECT_MIN_SIDE:
        scale = DETECT_MIN_SIDE / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    arr = np.asarray(img)
    for pad in (0, arr.shape[0] // 4):
        padded = np.pad(arr, pad, mode="edge") if pad else arr
        rgb = np.repeat(padded[:, :, None], 3, axis=2)
        det = detector.detect(rgb)
        if len(det):
            largest = int(np.argmax(det.boxes[:, 2] * det.boxes[:, 3]))
            return crop_faces(rgb, det.take(np.array([largest])), detector.options.model)[0]
    return None


def face_crops(x: np.ndarray, detect: bool, detector_model: str = "short",
               progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Float crops ``(N, 48, 48)`` of uint8 images ``x`` and which ones have a face: the images themselves
    (resized if need be), or with ``detect`` the largest detected face's crop (all zeros where none is found)."""
    if not detect:
        return _as_crops(x), np.ones(len(x), bool)
    crops = np.zeros((len(x), CROP_SIZE, CROP_SIZE), np.float32)
    found = np.zeros(len(x), bool)
    with FaceDetector.create_from_options(DetectorOptions(model=detector_model)) as detector:  # type: ignore[arg-type]
        for i, img in enumerate(tqdm(x, desc="detect", disable=not progress)):
            crop = detect_largest_crop(detector, img)
            if crop is not None:
                crops[i], found[i] = crop, True
    return crops, found


def evaluate(
    x: np.ndarray,
    y: np.ndarray,
    model: str = "main",
    detect: bool = False,
    detector_model: str = "short",
    flip_tta: bool | None = None,
    prior_correction: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy, per-class recall, the lesson yardstick, misses (no face found) and classifier ms/face at batch 32.

    The lesson yardstick is what a teacher pays for: ``neutral_to_negative`` is the share of neutral faces whose
    top class is one of :data:`~emowidgets.vocab.NEGATIVE` (false "needs attention" alarms), and
    ``negative_hit`` the share of negative faces whose top class is negative (any of the four). ``confusion``
    counts true class (rows) by predicted class (columns, FER2013 order; faces not found are left out).

    Raises:
        DataFileError: no images, or not one label per image.
    """
    if len(x) == 0 or len(x) != len(y):
        raise DataFileError(f"need at least one image and one label per image, got {len(x)} and {len(y)}")
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=model, flip_tta=flip_tta,
                                                                         prior_correction=prior_correction))
    crops, found = face_crops(x, detect, detector_model, progress)
    misses = int((~found).sum())
    classifier.classify(crops[:32])  # compile outside the timing
    t0 = time.perf_counter()
    probs = np.concatenate([classifier.classify(crops[i : i + 32]).probs for i in
                            tqdm(range(0, len(crops), 32), desc="classify", disable=not progress)]) if len(
        crops) else np.zeros((0, len(EMOTIONS)))
    ms_per_face = (time.perf_counter() - t0) * 1000 / max(len(crops), 1)
    pred = np.where(found, probs.argmax(-1) if len(probs) else 0, -1)
    recall = {name: float((pred[y == k] == k).mean()) if (y == k).any() else None
              for k, name in enumerate(EMOTIONS)}
    return {"n": len(y), "accuracy": float((pred == y).mean()) if len(y) else 0.0,
            "per_class_recall": recall, **lesson_yardstick(y, pred), "misses": misses,
            "ms_per_face": round(ms_per_face, 3),
            "model": model, "flip_tta": classifier.flip_tta,
            "prior_correction": classifier.prior_correction}


def lesson_yardstick(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """``neutral_to_negative``, ``negative_hit`` (None where the set has no such faces) and ``confusion``
    from true labels and predicted classes (-1: no face found, counted as neither)."""
    negative = np.array([EMOTIONS.index(e) for e in NEGATIVE])
    neutral = y == EMOTIONS.index("neutral")
    is_neg = np.isin(y, negative)
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
    ok = pred >= 0
    np.add.at(confusion, (y[ok], pred[ok]), 1)
    return {"neutral_to_negative": float(np.isin(pred[neutral], negative).mean()) if neutral.any() else None,
            "negative_hit": float(np.isin(pred[is_neg], negative).mean()) if is_neg.any() else None,
            "confusion": confusion.tolist()}

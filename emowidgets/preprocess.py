"""Detections -> aligned 48x48 grayscale face crops framed like FER2013, vectorised over faces.

The framing was measured, not guessed: MediaPipe run on 1,500 FER2013 val images (upscaled, padded)
puts the eye midpoint at (0.50, 0.395) of the crop and the box width at 0.861 (short-range model)
or 0.882 (full-range) of the crop side. We rotate so the eyes are level, scale by the box width and
place the eye midpoint there, so live crops look like the training data.
"""

from __future__ import annotations

import cv2
import numpy as np

from emowidgets.boxes import Detections
from emowidgets.vocab import CROP_SIZE

# Where each detector model's box sits in a FER2013 48x48 crop (median over 1,500 val images, see the module
# docstring): the crop side is box_width / BOX_FRACTION; the eye midpoint lies at (0.5, EYE_Y) of the crop.
BOX_FRACTION = {"short": 0.861, "full": 0.882}
EYE_Y = 0.395


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB ``uint8`` frame, as FER2013's grayscale: ``(H, W)`` uint8."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def crop_faces(rgb: np.ndarray, det: Detections, model: str = "short", size: int = CROP_SIZE) -> np.ndarray:
    """Aligned grayscale crops ``(N, size, size)`` float32 in ``[0, 1]`` for the faces in ``det``.

    Args:
        rgb: the frame, ``(H, W, 3)`` uint8 RGB, or its ``(H, W)`` grayscale (:func:`to_gray`).
        det: faces found in that frame.
        model: detector that produced ``det`` (``"short"`` or ``"full"``); their boxes differ in size.
        size: output side in pixels.
    """
    n = len(det)
    if n == 0:
        return np.zeros((0, size, size), np.float32)
    right_eye, left_eye = det.keypoints[:, 0], det.keypoints[:, 1]
    mid = (right_eye + left_eye) / 2
    delta = left_eye - right_eye
    angle = np.arctan2(delta[:, 1], delta[:, 0])
    side = det.boxes[:, 2] / BOX_FRACTION[model]
    # Supersample k x k points per output pixel when shrinking a lot, to avoid aliasing.
    k = int(np.clip(np.round(np.median(side) / size / 1.5), 1, 2))
    grid = (np.arange(size * k, dtype=np.float32) + 0.5) / (size * k)
    u = (grid[None, :] - 0.5)[:, None, :] * side[:, None, None]  # (N, 1, S)
    v = (grid[None, :] - EYE_Y)[:, :, None] * side[:, None, None]  # (N, S, 1)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    xs = mid[:, 0, None, None] + cos * u - sin * v
    ys = mid[:, 1, None, None] + sin * u + cos * v
    gray = rgb if rgb.ndim == 2 else to_gray(rgb)
    h, w = gray.shape
    xs = np.clip(xs - 0.5, 0, w - 1.001)
    ys = np.clip(ys - 0.5, 0, h - 1.001)
    x0, y0 = xs.astype(np.int32), ys.astype(np.int32)
    fx, fy = xs - x0, ys - y0
    top = gray[y0, x0] * (1 - fx) + gray[y0, x0 + 1] * fx
    bottom = gray[y0 + 1, x0] * (1 - fx) + gray[y0 + 1, x0 + 1] * fx
    crops = (top * (1 - fy) + bottom * fy) * np.float32(1 / 255)
    if k > 1:
        crops = crops.reshape(n, size, k, size, k).mean(axis=(2, 4))
    return crops.astype(np.float32)

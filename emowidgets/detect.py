"""Face detection with MediaPipe Tasks' BlazeFace (the only module that imports mediapipe).

Short range (128x128 input) suits a webcam; full range (192x192, sparse) finds the small faces of a
group photo. The tiled mode runs the detector on an overlapping grid of crops and maps the boxes
back, for video-call galleries whose faces are too small for one pass.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emowidgets.assets import detector_path
from emowidgets.decode import as_rgb
from emowidgets.nativelog import native_stderr_to_logging

# Where each model's box sits in a FER2013 48x48 crop (median over 1,500 val images, see docs/model.md):
# the crop side is box_width / BOX_FRACTION; the eye midpoint lies at (0.5, EYE_Y) of the crop.
BOX_FRACTION = {"short": 0.861, "full": 0.882}


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """How to detect faces.

    Attributes:
        model: ``"short"`` (webcam distance, fastest) or ``"full"`` (small and distant faces).
        min_confidence: detections scoring below this are dropped.
        tiles: ``(rows, cols)`` grid for the tiled mode; ``(1, 1)`` is a single pass.
        overlap: fraction of a tile shared with its neighbours in the tiled mode.
        nms_iou: boxes overlapping more than this (IoU) after tiling are merged.
    """

    model: Literal["short", "full"] = "short"
    min_confidence: float = 0.5
    tiles: tuple[int, int] = (1, 1)
    overlap: float = 0.2
    nms_iou: float = 0.4


@dataclasses.dataclass(frozen=True)
class Detections:
    """Faces in one frame, column-wise; zero-length arrays when there is none.

    Attributes:
        boxes: ``(N, 4)`` float32 ``x, y, width, height`` in pixels.
        scores: ``(N,)`` float32 detector confidence.
        keypoints: ``(N, 6, 2)`` float32 pixels: right eye, left eye, nose tip, mouth, right ear, left ear
            (the subject's right eye is on the image's left).
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        """No faces."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32))

    def take(self, index: np.ndarray) -> Detections:
        """The faces at ``index`` (an integer or boolean array)."""
        return Detections(self.boxes[index], self.scores[index], self.keypoints[index])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` ``(N, 4)`` with every box in ``b`` ``(M, 4)`` (``x, y, w, h``)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-6)


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area, ``(N, M)``: 1 when one box lies inside the other."""
    iw = np.clip(np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    smaller = np.minimum((a[:, 2] * a[:, 3])[:, None], (b[:, 2] * b[:, 3])[None])
    return iw * ih / np.maximum(smaller, 1e-6)


def nms(det: Detections, iou: float, contained: float = 0.7) -> Detections:
    """Greedy non-maximum suppression, highest score first.

    A box is dropped if its IoU with a kept box exceeds ``iou``, or if most of it (``contained`` of the
    smaller box) lies inside a kept box: tiling yields such partial duplicates of one face.
    """
    order = np.argsort(-det.scores)
    keep: list[int] = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = det.boxes[order[1:]]
        mine = det.boxes[i : i + 1]
        same = (iou_matrix(mine, rest)[0] > iou) | (_overlap_of_smaller(mine, rest)[0] > contained)
        order = order[1:][~same]
    return det.take(np.array(keep, dtype=np.int64))


# LiteRT warns once per process, at the first inference whose input tensor is not aligned (any call, as memory
# falls); detection runs quiet (emowidgets.nativelog) until that line has gone by.
_UNALIGNED_WARNING = "Input tensor memory is not aligned"
_unaligned_warned = threading.Event()


def _close_quietly(detector: Any) -> None:
    """Close a MediaPipe detector without its "DestroyAccelerator" line on stderr."""
    with native_stderr_to_logging():
        detector.close()


class FaceDetector:
    """MediaPipe BlazeFace wrapper returning :class:`Detections`. Use as a context manager or ``close()``."""

    def __init__(self, options: DetectorOptions, model_path: Path) -> None:
        from mediapipe.tasks import python as mp_python
        from mediapipe.tasks.python import vision

        self.options = options
        mp_options = vision.FaceDetectorOptions(
            base_options=mp_python.BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=options.min_confidence,
        )
        with native_stderr_to_logging():  # LiteRT/XNNPACK start-up lines, see emowidgets.nativelog
            self._detector = vision.FaceDetector.create_from_options(mp_options)
        self._close = weakref.finalize(self, _close_quietly, self._detector)
        # MediaPipe makes its C calls on a ThreadPoolExecutor, which Python shuts down in the threading exit
        # phase, before atexit; an unclosed detector then prints a traceback at exit. Close it in that phase,
        # first (the same hook concurrent.futures uses).
        threading._register_atexit(self._close)  # type: ignore[attr-defined]

    @classmethod
    def create_from_options(cls, options: DetectorOptions | None = None) -> FaceDetector:
        """Build a detector from the shipped model file (see :mod:`emowidgets.assets`)."""
        options = options or DetectorOptions()
        return cls(options, detector_path(options.model))

    def _detect_once(self, rgb: np.ndarray) -> Detections:
        import mediapipe as mp

        result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not result.detections:
            return Detections.empty()
        h, w = rgb.shape[:2]
        boxes = np.array([[d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width,
                           d.bounding_box.height] for d in result.detections], np.float32)
        scores = np.array([d.categories[0].score for d in result.detections], np.float32)
        kps = np.array([[[k.x * w, k.y * h] for k in d.keypoints] for d in result.detections], np.float32)
        return Detections(boxes, scores, kps)

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an RGB (or gray/RGBA) ``uint8`` frame; tiled when ``options.tiles`` asks for it."""
        if _unaligned_warned.is_set():
            return self._detect(image)
        with native_stderr_to_logging() as lines:
            found = self._detect(image)
        if any(_UNALIGNED_WARNING in line for line in lines):
            _unaligned_warned.set()
        return found

    def _detect(self, image: np.ndarray) -> Detections:
        rgb = as_rgb(image)
        rows, cols = self.options.tiles
        if (rows, cols) == (1, 1):
            return self._detect_once(rgb)
        h, w = rgb.shape[:2]
        th = int(np.ceil(h / (rows - (rows - 1) * self.options.overlap)))
        tw = int(np.ceil(w / (cols - (cols - 1) * self.options.overlap)))
        parts = []
        for y0 in np.linspace(0, h - th, rows).astype(int):
            for x0 in np.linspace(0, w - tw, cols).astype(int):
                det = self._detect_once(np.ascontiguousarray(rgb[y0 : y0 + th, x0 : x0 + tw]))
                offset = np.array([x0, y0], np.float32)
                parts.append(Detections(det.boxes + np.concatenate([offset, [0, 0]]), det.scores,
                                        det.keypoints + offset))
        merged = Detections(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                              ("boxes", "scores", "keypoints")))
        return nms(merged, self.options.nms_iou)

    def close(self) -> None:
        """Release the MediaPipe graph (again is a no-op)."""
        self._close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

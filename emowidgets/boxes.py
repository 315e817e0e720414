"""Face boxes: :class:`Detections`, overlap (IoU), non-maximum suppression and the largest face.

Boxes are ``x, y, width, height`` float32 in pixels everywhere. Numpy only: the detector produces these,
the tracker, the crop framing and the widgets consume them.
"""

from __future__ import annotations

import dataclasses

import numpy as np


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

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        """The faces of several :class:`Detections` (e.g. of several crops) as one."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("boxes", "scores", "keypoints")))

    def take(self, index: np.ndarray) -> Detections:
        """The faces at ``index`` (an integer or boolean array)."""
        return Detections(self.boxes[index], self.scores[index], self.keypoints[index])

    def largest(self, n: int) -> Detections:
        """The ``n`` largest faces (by box area), largest first; all of them if there are fewer."""
        return self.take(np.argsort(-areas(self.boxes), kind="stable")[:n])


def pixel_spans(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(N, 4)`` int ``x0, y0, x1, y1`` of boxes ``(N, 4)`` ``x, y, w, h``: the pixels each covers (start
    rounded down, end up), clipped to a ``width x height`` frame; for slicing crops out of it."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    spans = np.stack([np.floor(b[:, 0]), np.floor(b[:, 1]), np.ceil(b[:, 0] + b[:, 2]),
                      np.ceil(b[:, 1] + b[:, 3])], axis=1)
    return np.clip(spans, 0, [width, height, width, height]).astype(np.int64)


def areas(boxes: np.ndarray) -> np.ndarray:
    """Area of each box ``(N, 4)`` -> ``(N,)``."""
    return boxes[:, 2] * boxes[:, 3]


def largest_face(boxes: np.ndarray) -> int | None:
    """Index of the largest box (the face nearest the camera), or None when there is none."""
    return int(np.argmax(areas(boxes))) if len(boxes) else None


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` ``(N, 4)`` with every box in ``b`` ``(M, 4)`` (``x, y, w, h``)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = areas(a)[:, None] + areas(b)[None] - inter
    return inter / np.maximum(union, 1e-6)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area, ``(N, M)``: 1 when one box lies inside the other."""
    iw = np.clip(np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    smaller = np.minimum(areas(a)[:, None], areas(b)[None])
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
        same = (iou_matrix(mine, rest)[0] > iou) | (overlap_of_smaller(mine, rest)[0] > contained)
        order = order[1:][~same]
    return det.take(np.array(keep, dtype=np.int64))

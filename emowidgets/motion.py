"""Between two detections, move each face's box and keypoints with the image (Lucas-Kanade optical flow).

Detecting every face on every frame is the pipeline's largest fixed cost (a tiled gallery runs the
detector nine times). Faces move little in a fifth of a second, so the pipeline detects a few times a
second and, in between, follows the last detections: a few points per face (its six keypoints and a
3 x 3 grid inside its box) are tracked with pyramidal Lucas-Kanade flow, checked forwards and backwards,
and each face moves by the median shift of its good points. A face whose points mostly fail is *lost*,
and the pipeline runs the detector on that frame instead.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from emowidgets.boxes import Detections
from emowidgets.errors import OptionsError

_GRID = np.stack(np.meshgrid(np.linspace(0.25, 0.75, 3), np.linspace(0.3, 0.8, 3)), -1).reshape(-1, 2)
"""Where the grid points sit inside a box, as fractions of its width and height (eyes, nose, mouth)."""


@dataclasses.dataclass(frozen=True)
class FollowOptions:
    """How faces are followed between detections.

    Attributes:
        window: side in pixels of the Lucas-Kanade search window.
        levels: pyramid levels above the frame (each halves it), for faster motion.
        max_error: a point is good if tracking it forward and back returns within this many pixels.
        min_good: fraction of a face's points that must be good, or the face is lost.
    """

    window: int = 9
    levels: int = 3
    max_error: float = 1.0
    min_good: float = 0.5

    def __post_init__(self) -> None:
        if self.window < 3 or self.levels < 0 or self.max_error <= 0 or not 0 < self.min_good <= 1:
            raise OptionsError("window must be >= 3, levels >= 0, max_error > 0 and min_good in (0, 1]; got "
                               f"{self.window}, {self.levels}, {self.max_error}, {self.min_good}")


class FaceFollower:
    """Follows the faces of the last detection from frame to frame; :meth:`reset` with each new detection."""

    def __init__(self, options: FollowOptions | None = None) -> None:
        self.options = options or FollowOptions()
        self._gray: np.ndarray | None = None
        self._det = Detections.empty()

    def reset(self, gray: np.ndarray, det: Detections) -> None:
        """Start from ``det``, found in the grayscale frame ``gray``."""
        self._gray, self._det = gray, det

    def follow(self, gray: np.ndarray) -> Detections | None:
        """The last faces moved into ``gray``; ``None`` if any face is lost (or the frame size changed), so the
        caller detects instead. Scores are carried over. With no last faces there is nothing to lose: no faces,
        and the caller's detection keeps its rate (a face coming into view is found at the next one)."""
        moved = self.follow_each(gray)
        if moved is None or not moved[1].all():
            return None
        self._gray, self._det = gray, moved[0]
        return moved[0]

    def follow_each(self, gray: np.ndarray) -> tuple[Detections, np.ndarray] | None:
        """Every last face moved into ``gray``, and which of them held ``(N,)`` bool (a lost one keeps its old
        box); ``None`` if the frame size changed. Changes nothing: :meth:`reset` with what the caller keeps."""
        prev, det = self._gray, self._det
        if prev is None or prev.shape != gray.shape:
            return None
        n = len(det)
        grid = det.boxes[:, None, :2] + _GRID[None] * det.boxes[:, None, 2:]
        points = np.concatenate([det.keypoints, grid], axis=1).astype(np.float32)  # (N, P, 2)
        delta = np.zeros((n, 2), np.float32)
        held = np.zeros(n, bool)
        for i in range(n):
            shift = self._shift(prev, gray, det.boxes[i], points[i])
            if shift is not None:
                delta[i], held[i] = shift, True
        moved = Detections(det.boxes + np.concatenate([delta, np.zeros_like(delta)], axis=1), det.scores,
                           det.keypoints + delta[:, None, :])
        return moved, held

    def _shift(self, prev: np.ndarray, gray: np.ndarray, box: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """Median shift of one face's ``points`` ``(P, 2)``, tracked in a region around its ``box`` only (the
        pyramids of a whole frame cost more than the tracking), or ``None`` if too few points hold."""
        o = self.options
        margin = box[2:].max() * 0.25 + o.window
        h, w = gray.shape
        x0, y0 = (max(0, int(v - margin)) for v in box[:2])
        x1, y1 = min(w, int(box[0] + box[2] + margin)), min(h, int(box[1] + box[3] + margin))
        if min(x1 - x0, y1 - y0) < o.window:
            return None
        a, b = prev[y0:y1, x0:x1], gray[y0:y1, x0:x1]
        start = (points - np.array([x0, y0], np.float32)).reshape(-1, 1, 2)
        win = (o.window, o.window)
        moved, status, _ = cv2.calcOpticalFlowPyrLK(a, b, start, None, winSize=win, maxLevel=o.levels)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(b, a, moved, None, winSize=win, maxLevel=o.levels)
        good = (status[:, 0] == 1) & (status_back[:, 0] == 1) & (
            np.linalg.norm((back - start)[:, 0], axis=-1) < o.max_error)
        if good.mean() < o.min_good:
            return None
        return np.median((moved - start)[good, 0], axis=0).astype(np.float32)

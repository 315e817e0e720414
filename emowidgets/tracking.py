"""Frame-to-frame face tracking: IoU matching (Hungarian) and per-track exponential smoothing.

Gives each face a stable integer id while it stays in view, so its scores can be smoothed and a
per-person adapter can be looked up. Ids are never reused within a tracker's life.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` ``(N, 4)`` with every box in ``b`` ``(M, 4)`` (``x, y, w, h``)."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-6)


@dataclasses.dataclass
class Track:
    """One tracked face: its id, last box, smoothed probabilities and frames since last seen."""

    track_id: int
    box: np.ndarray
    probs: np.ndarray
    missed: int = 0


class Tracker:
    """Assigns track ids to detections and smooths their probabilities.

    Args:
        smoothing: weight of the newest frame in the exponential moving average (1 = no smoothing).
        min_iou: a detection continues a track only if their boxes overlap at least this much.
        max_missed: frames a track survives without a detection.
    """

    def __init__(self, smoothing: float = 0.4, min_iou: float = 0.2, max_missed: int = 10) -> None:
        self.smoothing = smoothing
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def assign(self, boxes: np.ndarray) -> np.ndarray:
        """Match this frame's boxes ``(N, 4)`` to tracks (new ids for new faces); return ids ``(N,)``."""
        n = len(boxes)
        ids = np.zeros(n, np.int64)
        assigned: dict[int, int] = {}
        if n and self.tracks:
            iou = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
            rows, cols = linear_sum_assignment(-iou)
            assigned = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= self.min_iou}
        seen: set[int] = set()
        for i in range(n):
            if i in assigned:
                track = self.tracks[assigned[i]]
                track.box, track.missed = boxes[i].copy(), 0
            else:
                track = Track(self._next_id, boxes[i].copy(), np.zeros(0, np.float32))
                self._next_id += 1
                self.tracks.append(track)
            ids[i] = track.track_id
            seen.add(track.track_id)
        for track in self.tracks:
            if track.track_id not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids

    def smooth(self, ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Fold this frame's ``probs`` ``(N, C)`` into each track's moving average; return the averages."""
        by_id = {t.track_id: t for t in self.tracks}
        out = probs.copy()
        for i, tid in enumerate(ids):
            track = by_id[int(tid)]
            if track.probs.shape == probs[i].shape:
                track.probs = self.smoothing * probs[i] + (1 - self.smoothing) * track.probs
            else:  # a new track, or the label set changed (an adapter was applied): start over
                track.probs = probs[i].copy()
            out[i] = track.probs
        return out

    def update(self, boxes: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`assign` then :meth:`smooth`: ``(track_ids (N,), smoothed probs (N, C))``."""
        ids = self.assign(boxes)
        return ids, self.smooth(ids, probs)

    def reset(self) -> None:
        """Forget every track (ids keep counting up)."""
        self.tracks = []

"""Which faces to classify on this frame: a per-frame classification budget, shared round-robin.

Classifying every face on every frame costs N network runs per frame, and a class of 25 cannot
afford that at camera rate. The budget classifies a face when it is new, when its last scores would be
older than ``1 / min_hz`` by the next frame (every face is refreshed at least that often) or when its crop changed
since it was last classified (an expression change) and it may be refreshed again (``max_hz``). Up to
``cap`` faces a frame, chosen in that order: new faces, then the most overdue or changed ones; every
other face keeps its last scores, and :attr:`FaceMemory.classified_ms` says how old they are.

The change test compares a 12 x 12 thumbnail of the aligned crop, brightness-normalised, with the one
taken when the face was last classified.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from emowidgets.errors import OptionsError

THUMB = 12
"""Side of the thumbnails the change test compares (the 48 x 48 crop averaged in 4 x 4 blocks)."""


@dataclasses.dataclass(frozen=True)
class BudgetOptions:
    """How often faces are classified.

    Attributes:
        min_hz: every face is re-classified at least this often (if the frame rate allows it). Frames arrive
            unevenly, so the default asks for 6 to keep the slowest face of a 25-face class view above 5 Hz
            (at 5, the slowest measured 4.9 Hz; ``benchmarks/classview_browser.py``).
        change: mean absolute difference of the normalised thumbnails (0..1 grey levels) above which a
            face counts as changed. On the shared clips a change under 0.01 moved the probabilities by a
            median 0.006-0.015 (total variation); over 0.03, by 0.11-0.19 (`benchmarks/tracking.py`).
        headroom: the per-frame cap covers ``min_hz`` for every face times this, so late faces catch up.
    """

    min_hz: float = 6.0
    change: float = 0.01
    headroom: float = 1.5

    def __post_init__(self) -> None:
        if self.min_hz <= 0 or self.change < 0 or self.headroom < 1:
            raise OptionsError(f"min_hz must be > 0, change >= 0 and headroom >= 1; got {self.min_hz}, "
                               f"{self.change}, {self.headroom}")


@dataclasses.dataclass
class FaceMemory:
    """What was computed for one face when it was last classified: its embedding and base scores as the head
    saw them (auto-calibrated, if on) and ``own``, the base model's scores before auto-calibration."""

    classified_ms: float
    thumb: np.ndarray
    embedding: np.ndarray
    probs: np.ndarray
    own: np.ndarray


def thumbnails(crops: np.ndarray) -> np.ndarray:
    """``(N, 12, 12)`` block means of ``(N, 48, 48)`` crops, minus each one's mean brightness."""
    n, size = len(crops), crops.shape[-1]
    k = size // THUMB
    small = crops[:, : THUMB * k, : THUMB * k].reshape(n, THUMB, k, THUMB, k).mean(axis=(2, 4))
    return small - small.mean(axis=(1, 2), keepdims=True)


class ClassifyBudget:
    """Picks the faces to classify each frame and remembers the last results of every face (by track id)."""

    def __init__(self, options: BudgetOptions | None = None) -> None:
        self.options = options or BudgetOptions()
        self.memory: dict[int, FaceMemory] = {}

    def choose(self, ids: np.ndarray, thumbs: np.ndarray, now_ms: float, max_hz: float,
               frame_interval_ms: float) -> np.ndarray:
        """Boolean mask ``(N,)`` of the faces to classify now.

        Args:
            ids: track ids, 0 for a face no track explains yet (always classified).
            thumbs: :func:`thumbnails` of the faces' crops.
            now_ms: this frame's time.
            max_hz: most refreshes per second per face (a quality level's setting).
            frame_interval_ms: time between processed frames (0: unknown, no cap).
        """
        n = len(ids)
        o = self.options
        urgency = np.zeros(n)
        new = np.zeros(n, bool)
        for i, tid in enumerate(ids):
            mem = self.memory.get(int(tid))
            if mem is None:
                new[i] = True
                continue
            age = now_ms - mem.classified_ms
            overdue = (age + frame_interval_ms) * o.min_hz / 1000  # would be too old by the next frame
            changed = float(np.abs(thumbs[i] - mem.thumb).mean()) / o.change if o.change else math.inf
            if overdue >= 1 or (changed >= 1 and age * max_hz >= 1000):
                urgency[i] = max(overdue, changed)
        due = new | (urgency > 0)
        cap = n if frame_interval_ms <= 0 else math.ceil(n * o.min_hz * o.headroom * frame_interval_ms / 1000)
        cap = max(cap, int(new.sum()))
        if due.sum() <= cap:
            return due
        order = np.lexsort((-urgency, ~new))  # new faces first, then the most urgent
        chosen = np.zeros(n, bool)
        chosen[order[:cap]] = True
        return chosen & due

    def remember(self, ids: np.ndarray, thumbs: np.ndarray, embeddings: np.ndarray, probs: np.ndarray,
                 own: np.ndarray, now_ms: float) -> None:
        """Store what was just computed for the classified faces ``ids`` (see :class:`FaceMemory`)."""
        for i, tid in enumerate(ids):
            self.memory[int(tid)] = FaceMemory(now_ms, thumbs[i], embeddings[i], probs[i], own[i])

    def forget(self, keep: set[int]) -> None:
        """Drop the memory of faces not in ``keep`` (their tracks are gone)."""
        self.memory = {tid: mem for tid, mem in self.memory.items() if tid in keep}

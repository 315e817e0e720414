"""Label-free calibration: centre each tracked face on its own resting face.

Faces differ at rest: one person's neutral reads a little sad or angry to a model trained on
strangers, and stays that way all lesson. Most of a lesson a face is at rest, so without any labels
the first ``frames`` embeddings of a track (its first seconds in view) give that person's resting
face: :func:`resting_face`, a median that leaves out the frames far from it (a smile, a word); a face
back after a long absence learns it again. From
then on every embedding of the track is shifted by ``neutral reference - resting face`` before the
head scores it, where the neutral reference is the mean embedding of FER2013's neutral validation
faces, stored in the model file's metadata by ``scripts/neutral_reference.py``. On people.npz this
gains 3-5 points for both models, still 2-4 when half the resting frames are not neutral
(``docs/calibration.md``).
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from emowidgets.errors import ModelFileError
from emowidgets.modelfile import metadata_vector

REFERENCE_KEY = "neutral_reference"
"""Model-file metadata key holding the neutral reference embedding (a JSON list of floats)."""


@dataclasses.dataclass(frozen=True)
class AutoCalibrationOptions:
    """How each face is calibrated without labels.

    Attributes:
        frames: embeddings of a track gathered before its shift applies (about 1-3 s at camera rate).
        max_tracks: tracks remembered; the oldest are forgotten first, so a long lesson stays bounded.
        relearn_after_s: a face away longer than this (a student who left and came back: other light, another
            seat) learns its resting face again from its next ``frames``; the old shift applies meanwhile.
    """

    frames: int = 30
    max_tracks: int = 512
    relearn_after_s: float = 60.0


def resting_face(frames: np.ndarray) -> np.ndarray:
    """A face's resting embedding from ``(N, D)`` unlabelled frames of it: the per-dimension median of the
    half of the frames nearest the plain median.

    A lesson's first seconds are not all rest; the frames farthest from the median (laughing, talking,
    turned away) are dropped before the median is taken again. On people.npz with half the resting frames
    not neutral this keeps 2 more points of the gain than the plain median (``docs/calibration.md``).
    """
    median = np.median(frames, axis=0)
    dist = np.linalg.norm(frames - median, axis=1)
    return np.median(frames[dist <= np.median(dist)], axis=0)


def read_reference(metadata: dict[str, str], embed_dim: int) -> np.ndarray:
    """The neutral reference ``(embed_dim,)`` stored in a model file's metadata.

    Raises:
        ModelFileError: the model file has no (or a malformed) reference.
    """
    if REFERENCE_KEY not in metadata:
        raise ModelFileError("this model file has no neutral reference, which auto-calibration needs: add one "
                             "with `python scripts/neutral_reference.py --model PATH` or pass auto_calibrate=False")
    return metadata_vector(metadata, REFERENCE_KEY, embed_dim)


class AutoCalibrator:
    """Shifts each track's embeddings so its resting face lands on the population's neutral face.

    Args:
        reference: the population's mean neutral embedding ``(D,)``.
        options: window and memory settings.
    """

    def __init__(self, reference: np.ndarray, options: AutoCalibrationOptions | None = None) -> None:
        self.reference = np.asarray(reference, np.float32)
        self.options = options or AutoCalibrationOptions()
        self._gathering: collections.OrderedDict[int, list[np.ndarray]] = collections.OrderedDict()
        self._shifts: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._seen: collections.OrderedDict[int, float] = collections.OrderedDict()

    def progress(self, track_id: int) -> float:
        """0..1: how much of the resting window of ``track_id`` is gathered (1: calibrated and not relearning)."""
        if int(track_id) in self._gathering:
            return len(self._gathering[int(track_id)]) / self.options.frames
        return 1.0 if int(track_id) in self._shifts else 0.0

    def __call__(self, track_ids: np.ndarray, embeddings: np.ndarray, now_ms: float | None = None) -> np.ndarray:
        """Gather this frame's embeddings ``(N, D)`` for tracks still learning their resting face; return them
        shifted where a shift is known. ``now_ms`` (the frame's time) lets a face that was away relearn."""
        out = np.array(embeddings, np.float32)
        away_ms = 1000 * self.options.relearn_after_s
        for i, tid in enumerate(int(t) for t in track_ids):
            if now_ms is not None:
                last = self._seen.pop(tid, None)
                self._seen[tid] = now_ms
                if last is not None and now_ms - last > away_ms and tid in self._shifts:
                    self._gathering.setdefault(tid, [])
            if tid in self._shifts and tid not in self._gathering:
                out[i] += self._shifts[tid]
                continue
            frames = self._gathering.setdefault(tid, [])
            frames.append(out[i].copy())
            if len(frames) >= self.options.frames:
                self._shifts[tid] = self.reference - resting_face(np.stack(frames))
                self._shifts.move_to_end(tid)
                del self._gathering[tid]
            if tid in self._shifts:
                out[i] += self._shifts[tid]
        for memory in (self._gathering, self._shifts, self._seen):
            while len(memory) > self.options.max_tracks:
                memory.popitem(last=False)
        return out

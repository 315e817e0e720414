"""The package's vocabulary: emotion labels, their colours and valence, the crop size, and :class:`FrameResult`.

The bottom layer: it imports numpy only, so offline tools that speak about results (the class log, the
after-class report) run without loading JAX, flax, OpenCV, SciPy or MediaPipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 label order: index ``i`` of every score vector is ``EMOTIONS[i]``."""

COLORS = ("#d62728", "#8c564b", "#9467bd", "#f2b701", "#1f77b4", "#17becf", "#aaaaaa")
"""One colour per emotion, in :data:`EMOTIONS` order; the class view's JS and the report use the same ones."""

NEGATIVE = ("angry", "disgust", "fear", "sad")
"""The emotions counted as negative (attention list, report, valence)."""

CROP_SIZE = 48
"""Side in pixels of the aligned grayscale face crops the classifier takes (FER2013's)."""

_NEG = np.isin(np.array(EMOTIONS), NEGATIVE)
_HAPPY = EMOTIONS.index("happy")


def base_scores(probs: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """The 7 base-emotion columns of ``probs`` ``(N, C)`` scored in ``labels`` (an adapter's label set may
    differ), in :data:`EMOTIONS` order, 0 for an emotion the labels lack."""
    cols = np.array([labels.index(e) if e in labels else -1 for e in EMOTIONS])
    return np.where(cols >= 0, np.asarray(probs)[:, cols.clip(0)], 0.0).astype(np.float32)


def valence(probs: np.ndarray) -> float:
    """P(happy) minus P(angry, disgust, fear, sad): -1 (negative) .. +1 (happy), 0 for neutral/surprise."""
    return float(probs[_HAPPY] - probs[_NEG].sum())


@dataclasses.dataclass(frozen=True)
class FrameResult:
    """Everything known about one processed frame; no pixels.

    Attributes:
        seq: the sender's frame number.
        timestamp_ms: the sender's capture time.
        width, height: frame size in pixels.
        boxes: ``(N, 4)`` float32 ``x, y, w, h`` in pixels.
        scores: ``(N,)`` detector confidence.
        track_ids: ``(N,)`` stable face ids.
        probs: ``(N, C)`` smoothed class probabilities, columns in ``labels`` order.
        raw_probs: ``(N, C)`` this frame's probabilities before smoothing.
        embeddings: ``(N, D)`` backbone embeddings as the head saw them (auto-calibrated, if on).
        labels: class names.
        timings: milliseconds per stage: ``decode``; ``layout`` (the gray frame, the call's grid and its names);
            ``follow`` (faces followed from the last frame); ``detect`` (0 on a frame whose faces were only
            followed; a gallery's frame searches only the tiles due); ``crop`` (crops and their thumbnails);
            ``classify`` (the classifier's call alone); ``track`` (matching, the classification budget, ids,
            auto-calibration); ``head`` (adapter and smoothing); ``check`` (new faces' second look); ``total``
            (from the call, decoding included).
            A photo (``process_image``) has ``decode``, ``detect``, ``crop``, ``classify``, ``head``, ``total``.
        ages_ms: ``(N,)`` milliseconds since each face was last classified (0: this frame); faces the
            classification budget skipped keep their previous scores and grow older. Left out, all zeros.
        level: the quality level the frame was processed at, e.g. ``"main · TTA off · detect 5/s"``
            (see :mod:`emowidgets.ladder`); ``""`` for a single photo.
        frame_scale: how much smaller (< 1) or larger (> 1) the next frames could be and still keep every
            face sharp at this level, relative to this frame; the camera widget resizes what it sends.
        tiles: ``(M, 4)`` float32 ``x, y, w, h`` px of the video-call tiles found (or set) in the frame; empty
            when there is no grid (a camera, a room), and then every face's tile is -1.
        grid: the grid's name, e.g. ``"7x7"`` or ``"7+7+5"``; ``""`` without one.
        grid_source: ``"auto"`` (found in the frames), ``"set"`` (the teacher's) or ``"none"``.
        face_tiles: ``(N,)`` the tile of each face (-1: none); a tile without a face is a camera off, or
            someone away.
        tile_names: ``(M,)`` the participant's name read in each call tile (``""``: none read), when the
            pipeline reads names (``PipelineOptions.read_names``); empty otherwise. Text only.
        uncalibrated: ``(N, 7)`` the base model's own scores of this frame, in :data:`EMOTIONS` order, before
            auto-calibration and any adapter, unsmoothed: "needs attention" reads these, the measure its
            thresholds were chosen on (``docs/classroom.md``). Left out: the base columns of ``raw_probs``.
        resting: ``(N,)`` how much of each face's resting expression auto-calibration has learned, 0..1 (1:
            learned, or auto-calibration off). Left out, all ones.
    """

    seq: int
    timestamp_ms: int
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    probs: np.ndarray
    raw_probs: np.ndarray
    embeddings: np.ndarray
    labels: tuple[str, ...]
    timings: dict[str, float]
    ages_ms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    level: str = ""
    frame_scale: float = 1.0
    tiles: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4), np.float32))
    grid: str = ""
    grid_source: str = "none"
    face_tiles: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    tile_names: tuple[str, ...] = ()
    uncalibrated: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, len(EMOTIONS)), np.float32))
    resting: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(0, np.float32))

    def __post_init__(self) -> None:
        if len(self.ages_ms) != len(self.boxes):  # built without ages: every face classified on this frame
            object.__setattr__(self, "ages_ms", np.zeros(len(self.boxes), np.float32))
        if len(self.face_tiles) != len(self.boxes):  # built without a grid
            object.__setattr__(self, "face_tiles", np.full(len(self.boxes), -1, np.int64))
        if len(self.uncalibrated) != len(self.boxes):  # built without them: the frame's scores are the base model's
            object.__setattr__(self, "uncalibrated", base_scores(self.raw_probs, tuple(self.labels)))
        if len(self.resting) != len(self.boxes):  # built without auto-calibration
            object.__setattr__(self, "resting", np.ones(len(self.boxes), np.float32))

    @property
    def empty_tiles(self) -> np.ndarray:
        """Indices of the call tiles without a face (camera off, or nobody there)."""
        return np.setdiff1d(np.arange(len(self.tiles)), self.face_tiles)

    @property
    def dominant(self) -> list[str]:
        """Most likely label of each face."""
        return [self.labels[i] for i in self.probs.argmax(axis=1)] if len(self.probs) else []

    def to_message(self) -> dict[str, Any]:
        """A small JSON-able summary for the browser: boxes in 0-1 units, ids, labels, scores, ages and tiles,
        the call's grid (tiles in 0-1 units), the quality level and the frame scale asked for."""
        w, h = max(self.width, 1), max(self.height, 1)
        scale = np.array([w, h, w, h], np.float32)
        return {
            "seq": self.seq,
            "faces": [
                {"box": [round(float(v), 4) for v in box / scale], "id": int(tid), "label": label,
                 "score": round(float(p.max()), 3), "age": int(age), "tile": int(tile)}
                for box, tid, label, p, age, tile in zip(self.boxes, self.track_ids, self.dominant, self.probs,
                                                         self.ages_ms, self.face_tiles, strict=True)
            ],
            "grid": {"label": self.grid, "source": self.grid_source,
                     "tiles": [[round(float(v), 4) for v in t / scale] for t in self.tiles],
                     "names": list(self.tile_names)},
            "ms": round(self.timings.get("total", 0.0), 1),
            "level": self.level,
            "scale": round(float(self.frame_scale), 3),
        }

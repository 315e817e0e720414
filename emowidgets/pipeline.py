"""Frame -> decode -> layout -> detect/follow -> crop -> classify -> track/smooth -> head: one frame's processing,
on whichever thread calls it.

Delivery lives in :mod:`emowidgets.worker`: each Pipeline owns a :class:`~emowidgets.worker.FrameWorker` with the
listeners, the bounded drop-oldest queue and the worker thread, and the public ``add_listener``/``start``/
``submit``/``process_and_deliver`` methods here hand over to it. Every source's results leave through one path,
:meth:`Pipeline.process_and_deliver`: listeners are called with each :class:`FrameResult` on the thread that
processed it (the worker for a browser camera's queued frames, a kernel source's own thread for a video file or
the kernel camera). A bad frame is counted in ``stats.bad_frames`` and skipped; the worker never dies from one.

Life cycle (:class:`PipelineState`): ``CREATED`` -> ``RUNNING`` (``start()``) -> ``CREATED`` again
(``stop()``) ... -> ``CLOSED`` (``close()``, final). A closed pipeline has released its detector, so every
later ``submit``/``process_*``/``start``/``add_listener`` raises :class:`~emowidgets.errors.ClosedError`
instead of silently doing nothing. ``close()`` is safe from any thread at any time: ``process_*`` calls already
inside the pipeline finish, and the detector (native MediaPipe memory) is released only after the last returns.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference
from emowidgets.boxes import Detections
from emowidgets.budget import BudgetOptions, ClassifyBudget, thumbnails
from emowidgets.decode import as_rgb, decode, decode_photo
from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import ModelFileError, OptionsError
from emowidgets.gallery import Gallery
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.ladder import LadderOptions, QualityLadder
from emowidgets.layout import GridLayout, parse_grid, tile_looks
from emowidgets.motion import FaceFollower, FollowOptions
from emowidgets.preprocess import crop_faces, to_gray
from emowidgets.tracking import Tracker
from emowidgets.vocab import EMOTIONS, FrameResult
from emowidgets.worker import FrameWorker
from emowidgets.worker import PipelineStats as PipelineStats  # its old home: still importable from here

log = logging.getLogger("emowidgets.pipeline")

MAX_CHECKS = 3
"""Second looks a new track gets (``PipelineOptions.check_faces``) before it is taken for a phantom."""
CHECKS_PER_FRAME = 8
"""Second looks made on one frame at most (about 8 ms each on 2 cores): a screen of new faces costs a few frames."""


class Head(Protocol):
    """Replaces the base classifier's output, e.g. a few-shot adapter (see ``emowidgets.adapter``)."""

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Return ``(probs (N, C), labels)`` for the faces of one frame."""
        ...


class PipelineState(enum.Enum):
    """Where a :class:`Pipeline` is in its life: ``CREATED`` (no worker), ``RUNNING`` (worker on), ``CLOSED``."""

    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """Settings of a :class:`Pipeline`.

    Attributes:
        detector: face detector settings.
        classifier: emotion model settings.
        smoothing: weight of the newest frame in each face's moving average (1 = raw scores).
        queue_size: frames waiting for the worker; more arrivals drop the oldest.
        max_faces: faces classified per frame (largest first).
        auto_calibrate: centre each tracked face on its own resting face, without labels (see
            :mod:`emowidgets.autocalib`); off here, on in ``live()`` and ``classroom()``.
        auto_calibration: window and memory settings of ``auto_calibrate``.
        ladder: the quality levels and when to move between them (:mod:`emowidgets.ladder`); the level
            sets the detection rate, the classification rate, flip TTA and the frame size asked for.
        budget: which faces are classified on each frame (:mod:`emowidgets.budget`).
        follow: how faces are followed between detections (:mod:`emowidgets.motion`).
        grid: a video-call gallery's tile grid: ``"auto"`` (found in the frames, :mod:`emowidgets.layout`),
            ``"none"`` (a camera or a room: the whole frame is searched) or ``"7x7"``-style rows x cols.
            With a grid, each call tile is searched on its own and holds at most one face.
        layout_every_ms: how often ``"auto"`` checks that the grid still holds, and looks for it again if not
            (people join or leave, the call re-pages).
        min_face_px_tiled: the smallest face's box side the sent frames must keep while a grid is known: the
            detector sees each call tile at its own 128 px whatever the frame size, so frames need only keep
            each face's 48-px crop made from at least 48 source pixels (a 42-px box). Fewer cost the teacher:
            crops made from 40 source pixels raise neutral faces called negative on FER2013 val from 25 % to
            33 % (fast model; ``benchmarks/crop_resolution.py``).
        check_faces: give each new track a second look before it is reported (:meth:`FaceDetector.check`, the
            full-range model on the face's surroundings; up to ``MAX_CHECKS`` tries, ``CHECKS_PER_FRAME`` a
            frame): a track it never confirms is a phantom (a test pattern, a colour field) and is followed
            but never reported. Faces found in their own call tile pass at once (their score floor,
            ``DetectorOptions.tile_min_confidence``, already keeps camera-off tiles out).
        read_names: read each call tile's name label (:mod:`emowidgets.names`, the ``names`` extra) when a
            grid is found or changes, and again ``names_every_ms`` after each read; a stream's reads run on a
            thread of their own (frames go on meanwhile; the names come with the first frame after), and a
            tile's name is the vote of its last 3 reads. Without the extra, one log line.
    """

    detector: DetectorOptions = dataclasses.field(default_factory=DetectorOptions)
    classifier: ClassifierOptions = dataclasses.field(default_factory=ClassifierOptions)
    smoothing: float = 0.4
    queue_size: int = 2
    max_faces: int = 64
    auto_calibrate: bool = False
    auto_calibration: AutoCalibrationOptions = dataclasses.field(default_factory=AutoCalibrationOptions)
    ladder: LadderOptions = dataclasses.field(default_factory=LadderOptions)
    budget: BudgetOptions = dataclasses.field(default_factory=BudgetOptions)
    follow: FollowOptions = dataclasses.field(default_factory=FollowOptions)
    grid: str = "none"
    layout_every_ms: float = 1000.0
    min_face_px_tiled: int = 42
    check_faces: bool = True
    read_names: bool = False
    names_every_ms: float = 5000.0

    def __post_init__(self) -> None:
        parse_grid(self.grid)
        if not 0 < self.smoothing <= 1:
            raise OptionsError(f"smoothing must be in (0, 1], got {self.smoothing!r}")
        if self.queue_size < 1 or self.max_faces < 1:
            raise OptionsError(f"queue_size and max_faces must be >= 1, got {self.queue_size}, {self.max_faces}")


class Pipeline:
    """The live processing chain. Use ``process_*`` synchronously, or ``start()`` + ``submit()``."""

    def __init__(self, detector: FaceDetector, classifier: EmotionClassifier, options: PipelineOptions) -> None:
        self.options = options
        self.detector = detector
        self.classifier = classifier
        self.tracker = Tracker(smoothing=options.smoothing)
        self._head: Head | None = None
        self.autocalib = AutoCalibrator(read_reference(classifier.metadata, classifier.embed_dim),
                                        options.auto_calibration) if options.auto_calibrate else None
        """Label-free per-face calibration (None when ``options.auto_calibrate`` is off)."""
        self.ladder = QualityLadder(options.ladder)
        """The quality level frames are processed at (:mod:`emowidgets.ladder`); moved by the worker."""
        self.budget = ClassifyBudget(options.budget)
        self.follower = FaceFollower(options.follow)
        self._detected_ms = -1e12  # time of the last full detection
        self._last_ms = 0.0  # time of the last tracked frame
        self._interval_ms = 0.0  # moving average of the time between tracked frames
        self._size: tuple[int, int] | None = None  # (width, height) of the last tracked frame
        self._gallery = Gallery(options.grid, options.layout_every_ms, options.read_names, options.names_every_ms)
        self._worker = FrameWorker(self._process_frame, self.record_load, options.queue_size)
        self.stats = self._worker.stats
        """Frames received, processed, dropped and bad (:class:`~emowidgets.worker.PipelineStats`)."""
        self._cond = threading.Condition()  # guards _inside and _released
        self._inside: collections.Counter[int] = collections.Counter()  # thread id -> process_* calls running
        self._released = False  # the detector was closed
        self.camera_fps = 0.0
        """Frames per second the source delivers (0: unknown); the quality ladder compares the processed rate
        with it. Set by the camera widget from each frame's header (:meth:`set_camera_rate`)."""

    @property
    def head(self) -> Head | None:
        """What replaces the base classifier's output (e.g. a few-shot adapter); None: the base model.

        Raises (on assignment):
            ModelFileError: an adapter fitted on another backbone (or embedding size) than this pipeline's.
        """
        return self._head

    @head.setter
    def head(self, head: Head | None) -> None:
        if head is not None:
            _check_backbone(head, self.classifier.backbone_id, self.classifier.embed_dim)
        self._head = head  # one assignment: the worker reads the old or the new head, never half

    @classmethod
    def create_from_options(cls, options: PipelineOptions | None = None, warmup: bool = True) -> Pipeline:
        """Load the detector and the classifier; compile every batch bucket unless ``warmup=False``.

        Everything is loaded and checked before the compile thread starts, so a bad option or file leaves no
        thread or detector behind.
        """
        options = options or PipelineOptions()
        detector = FaceDetector.create_from_options(options.detector)
        try:
            classifier = EmotionClassifier.create_from_options(options.classifier)
            pipeline = cls(detector, classifier, options)
        except BaseException:
            detector.close()
            raise
        if warmup:
            classifier.warmup()
        return pipeline

    @property
    def grid(self) -> str:
        """The gallery grid setting: ``"auto"``, ``"none"`` or ``"RxC"`` (see :class:`PipelineOptions`); set from
        any thread, the next frame drops the grid in use.

        Raises (on assignment):
            OptionsError: another value.
        """
        return self._gallery.grid

    @grid.setter
    def grid(self, setting: str) -> None:
        self._gallery.grid = setting

    @property
    def layout(self) -> GridLayout | None:
        """The call's tile grid now in use (None: no grid, the whole frame is searched)."""
        return self._gallery.layout

    @property
    def tile_names(self) -> tuple[str, ...]:
        """The name read in each tile of ``layout`` (``read_names``); ``()`` without a grid."""
        return self._gallery.tile_names

    @contextlib.contextmanager
    def _entered(self) -> Iterator[None]:
        """Count one ``process_*`` call as inside the pipeline, so that :meth:`close` keeps the detector until it
        returns; the last call out of a pipeline closed meanwhile releases it."""
        me = threading.get_ident()
        with self._cond:
            self._worker.check_open()  # closed first (worker.close), then waited on here: a call is in or refused
            self._inside[me] += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside[me] -= 1
                if not self._inside[me]:
                    del self._inside[me]
                release = self._release_due()
                self._cond.notify_all()
            if release:
                self.detector.close()

    def _release_due(self) -> bool:
        """Whether the caller (holding ``_cond``) must release the detector now: closed and no call inside."""
        if not self._worker.closed or self._inside or self._released:
            return False
        self._released = True
        return True

    def set_camera_rate(self, fps: float) -> None:
        """Tell the pipeline how many frames per second the source delivers (the browser measures it)."""
        self.camera_fps = max(0.0, float(fps))

    def record_load(self, busy_ms: float) -> None:
        """Count one frame's work (processing plus listeners, ``busy_ms``) toward the quality ladder;
        :meth:`process_and_deliver` does this after each frame. Frames processed while the classifier still
        compiles in the background do not count: they say nothing about the machine."""
        if self.classifier.warming_up:
            return
        if self.ladder.observe(time.perf_counter(), busy_ms, self.camera_fps):
            log.info("quality level %d: %s", self.ladder.index, self.ladder.level)

    # -- synchronous API ---------------------------------------------------------------------------
    def process_bytes(self, data: bytes | memoryview, *args: int, seq: int = 0, timestamp_ms: int = 0
                      ) -> FrameResult:
        """Process one encoded frame (JPEG/PNG/WebP) of a stream.

        ``seq`` and ``timestamp_ms`` are keyword-only (positional ones still work, with a DeprecationWarning).
        ``timestamp_ms`` is the capture time (any clock that counts milliseconds up, > 0). With it, faces are
        detected at the quality level's rate and followed in between, and classified within the budget
        (:mod:`emowidgets.budget`); without it (0) every frame is detected and every face classified. A
        timestamp earlier than the last one starts a new stream: the tracks are forgotten (new ids) and the
        frame gets a full detection.

        Raises:
            FrameError: a bad frame.
            ClosedError: the pipeline is closed.
        """
        with self._entered():
            t0 = time.perf_counter()
            seq, timestamp_ms = _frame_keys(args, seq, timestamp_ms, "process_bytes")
            rgb = decode(data)
            return self._process(rgb, seq, timestamp_ms, t0, (time.perf_counter() - t0) * 1000)

    def process_array(self, image: np.ndarray, *args: int, seq: int = 0, timestamp_ms: int = 0) -> FrameResult:
        """Process one decoded frame (``(H, W, 3)`` RGB, gray or RGBA; ``uint8``, ``uint16`` or float in [0, 1]);
        ``seq`` and ``timestamp_ms`` as in :meth:`process_bytes`.

        Raises:
            FrameError: a bad frame.
            ClosedError: the pipeline is closed.
        """
        with self._entered():
            t0 = time.perf_counter()
            seq, timestamp_ms = _frame_keys(args, seq, timestamp_ms, "process_array")
            return self._process(as_rgb(image), seq, timestamp_ms, t0, 0.0)

    def process_image(self, image: bytes | memoryview | np.ndarray | str | os.PathLike[str] | Image.Image
                      ) -> FrameResult:
        """Process one independent photo, for batch work: encoded bytes, a file path, a PIL image or a decoded
        array. A photo's EXIF orientation is applied first, so a phone's rotated photo is seen upright.

        Unlike the ``process_*`` frame methods, nothing carries over between calls: no tracking, no
        smoothing, no auto-calibration, so a photo gets the same result whatever came before it. Track
        ids are 0 (per-person adapters of an :class:`~emowidgets.adapter.AdapterSet` do not apply; a
        room adapter does).

        Raises:
            FrameError: bad bytes, a bad array, an unreadable file or another type (named).
            ClosedError: the pipeline is closed.
        """
        with self._entered():
            t0 = time.perf_counter()
            rgb = decode_photo(image)
            return self._process(rgb, 0, 0, t0, (time.perf_counter() - t0) * 1000, track=False)

    def _process(self, rgb: np.ndarray, seq: int, timestamp_ms: int, t0: float, decode_ms: float,
                 track: bool = True) -> FrameResult:
        if not track:
            return self._process_photo(rgb, seq, timestamp_ms, t0, decode_ms)
        # Time drives the detection rate and the classification budget, so only timestamped frames (a camera,
        # a video) get them; a frame without a timestamp gets the full treatment.
        timed = timestamp_ms > 0
        now_ms = float(timestamp_ms)
        if timed and now_ms < self._last_ms:  # a new stream (another clip, a restarted camera): start afresh
            log.info("timestamp %d ms is before the last frame's %.0f ms: a new stream, tracks forgotten",
                     timestamp_ms, self._last_ms)
            self.tracker.reset()
            self._detected_ms, self._last_ms, self._interval_ms = -1e12, 0.0, 0.0
            self._gallery.new_stream()
        if timed and self._last_ms and 0 < now_ms - self._last_ms < 5000:
            gap = now_ms - self._last_ms
            self._interval_ms = gap if not self._interval_ms else 0.9 * self._interval_ms + 0.1 * gap
        self._last_ms = now_ms
        level = self.ladder.level
        size = (rgb.shape[1], rgb.shape[0])
        if self._size and size != self._size:  # the camera resized its frames: keep the tracks on their faces
            self.tracker.rescale(size[0] / self._size[0], size[1] / self._size[1])
        self._size = size
        t1 = time.perf_counter()
        gray = to_gray(rgb)
        layout = self._gallery.find(gray, now_ms, timed)
        if layout is not None:
            self._gallery.read_names(rgb, layout, now_ms, timed)
        t_layout = time.perf_counter()
        if layout is None:
            det = (self.follower.follow(gray) if timed and now_ms - self._detected_ms < 1000 / level.detect_hz
                   else None)
            t_follow = t2 = time.perf_counter()
            if det is None:  # time for a full detection, a face was lost, or the frame size changed
                det = self._detect(rgb)
                self.follower.reset(gray, det)
                self._detected_ms = now_ms
                t2 = time.perf_counter()
            face_tiles = np.full(len(det), -1, np.int64)
        else:
            det, face_tiles, t_follow, t2 = self._detect_tiles(rgb, gray, layout, now_ms, timed, level.detect_hz)
        crops = crop_faces(gray, det, self.detector.options.model)
        thumbs = thumbnails(crops)
        t3 = time.perf_counter()
        looks = None if layout is None else tile_looks(rgb, layout.tiles[face_tiles])
        held = self.tracker.match(det.boxes, looks)  # faces not classified now are explained by their tracks
        fresh = (self.budget.choose(held, thumbs, now_ms, level.max_classify_hz, self._interval_ms) if timed
                 else np.ones(len(det), bool))
        t_match = time.perf_counter()
        out = self.classifier.classify(crops[fresh], flip=level.flip_tta)
        t4 = time.perf_counter()
        n = len(det)
        embeddings = np.zeros((n, self.classifier.embed_dim), np.float32)
        base_probs = np.zeros((n, len(EMOTIONS)), np.float32)
        own = np.zeros_like(base_probs)  # the base model's own scores, before auto-calibration: attention's
        embeddings[fresh], base_probs[fresh], own[fresh] = out.embeddings, out.probs, out.probs
        ages = np.zeros(n, np.float32)
        for i in np.flatnonzero(~fresh):
            memory = self.budget.memory[int(held[i])]
            embeddings[i], base_probs[i], own[i] = memory.embedding, memory.probs, memory.own
            ages[i] = now_ms - memory.classified_ms
        ids = self.tracker.assign(det.boxes, embeddings, fresh, held, looks)
        resting = np.ones(n, np.float32)
        if self.autocalib is not None:
            if fresh.any():
                embeddings[fresh] = self.autocalib(ids[fresh], embeddings[fresh], now_ms)
                base_probs[fresh] = self.classifier.probs_from_embeddings(embeddings[fresh])
            resting = np.array([self.autocalib.progress(t) for t in ids], np.float32)
        self.budget.remember(ids[fresh], thumbs[fresh], embeddings[fresh], base_probs[fresh], own[fresh], now_ms)
        self.budget.forget({t.track_id for t in self.tracker.tracks})
        t_track = time.perf_counter()
        probs, labels = self._apply_head(embeddings, base_probs, ids)
        smoothed = self.tracker.smooth(ids, probs)
        t5 = time.perf_counter()
        real = self._checked(rgb, det.boxes, ids, face_tiles)
        t6 = time.perf_counter()
        det, ids, smoothed, probs, embeddings, ages, face_tiles, own, resting = (
            det.take(real), ids[real], smoothed[real], probs[real], embeddings[real], ages[real], face_tiles[real],
            own[real], resting[real])
        n = len(real)
        timings = {"decode": decode_ms, "layout": (t_layout - t1) * 1000, "follow": (t_follow - t_layout) * 1000,
                   "detect": (t2 - t_follow) * 1000, "crop": (t3 - t2) * 1000, "classify": (t4 - t_match) * 1000,
                   "track": (t_match - t3 + t_track - t4) * 1000, "head": (t5 - t_track) * 1000,
                   "check": (t6 - t5) * 1000, "total": (t6 - t0) * 1000}
        name = Path(self.options.classifier.model).stem
        min_px = level.min_face_px if layout is None else min(level.min_face_px, self.options.min_face_px_tiled)
        scale = min_px / float(det.boxes[:, 2:].min()) if n else 4.0
        return FrameResult(seq, timestamp_ms, rgb.shape[1], rgb.shape[0], det.boxes, det.scores, ids, smoothed,
                           probs, embeddings, labels, timings, ages,
                           level.describe(name, self.classifier.flip_tta), scale,
                           *(_layout_fields(layout, face_tiles)), self.tile_names if layout is not None else (),
                           uncalibrated=own, resting=resting)

    def _process_photo(self, rgb: np.ndarray, seq: int, timestamp_ms: int, t0: float, decode_ms: float
                       ) -> FrameResult:
        """One frame on its own: detect, classify every face, no tracking, smoothing or budget."""
        t1 = time.perf_counter()
        det = self._detect(rgb)
        t2 = time.perf_counter()
        crops = crop_faces(rgb, det, self.detector.options.model)
        t3 = time.perf_counter()
        out = self.classifier.classify(crops)
        t4 = time.perf_counter()
        ids = np.zeros(len(det), np.int64)
        probs, labels = self._apply_head(out.embeddings, out.probs, ids)
        t5 = time.perf_counter()
        timings = {"decode": decode_ms, "detect": (t2 - t1) * 1000, "crop": (t3 - t2) * 1000,
                   "classify": (t4 - t3) * 1000, "head": (t5 - t4) * 1000, "total": (t5 - t0) * 1000}
        return FrameResult(seq, timestamp_ms, rgb.shape[1], rgb.shape[0], det.boxes, det.scores, ids, probs,
                           probs, out.embeddings, labels, timings, np.zeros(len(det), np.float32),
                           uncalibrated=out.probs)

    def _detect_tiles(self, rgb: np.ndarray, gray: np.ndarray, layout: GridLayout, now_ms: float, timed: bool,
                      detect_hz: float) -> tuple[Detections, np.ndarray, float, float]:
        """Faces of a gallery frame, one at most per call tile, and their tiles: each face is followed from the
        last frame, and its tile searched again when the face is lost or the tile's turn comes (an empty tile
        ``detect_hz`` times a second, a followed face's half as often; a share of the tiles on each frame, the
        most overdue first, so that no frame pays for all)."""
        moved = self.follower.follow_each(gray) if timed else None
        tile_ms = self._gallery.tile_ms  # each tile's last search, updated in place
        t_follow = time.perf_counter()
        m = len(layout.tiles)
        if moved is None:
            followed, keep, tiles_of = Detections.empty(), np.zeros(0, bool), np.zeros(0, np.int64)
            due = np.arange(m)
        else:
            followed, held = moved
            tiles_of = layout.tile_of(followed.boxes)
            keep = held & (tiles_of >= 0)
            lost = np.unique(tiles_of[~keep & (tiles_of >= 0)])
            # a followed face's tile is searched at half the rate of an empty one (a camera may come on there)
            period = np.full(m, 1000 / detect_hz)
            period[tiles_of[keep]] *= 2
            stale = np.flatnonzero(now_ms - tile_ms >= period)
            per_frame = (1000 / period).sum() * self._interval_ms / 1000
            share = int(np.ceil(per_frame)) if self._interval_ms else m
            stale = stale[np.argsort(tile_ms[stale] - now_ms + period[stale], kind="stable")][:share]
            due = np.union1d(lost, stale).astype(np.int64)
        found, where = self.detector.detect_tiles(rgb, layout.tiles[due])
        tile_ms[due] = now_ms
        keep &= ~np.isin(tiles_of, due)
        keep[np.flatnonzero(keep)[_repeated(tiles_of[keep])]] = False  # two followed faces drifted into one tile
        det = Detections.concat([followed.take(keep), found])
        face_tiles = np.concatenate([tiles_of[keep], due[where]]).astype(np.int64)
        if len(det) > self.options.max_faces:
            order = np.argsort(-det.boxes[:, 2] * det.boxes[:, 3], kind="stable")[: self.options.max_faces]
            det, face_tiles = det.take(order), face_tiles[order]
        self.follower.reset(gray, det)
        return det, face_tiles, t_follow, time.perf_counter()

    def _checked(self, rgb: np.ndarray, boxes: np.ndarray, ids: np.ndarray, face_tiles: np.ndarray) -> np.ndarray:
        """The indices of the faces to report: tracks confirmed as faces by a second look (see
        ``PipelineOptions.check_faces``); tracks still waiting for theirs, and phantoms, are left out."""
        if not self.options.check_faces:
            return np.arange(len(ids))
        tracks = {t.track_id: t for t in self.tracker.tracks}
        waiting: list[int] = []
        for i, tid in enumerate(ids.tolist()):
            track = tracks[tid]
            if track.face is None and face_tiles[i] >= 0:
                track.face = True
            elif track.face is None and len(waiting) < CHECKS_PER_FRAME:
                waiting.append(i)
        if waiting:
            for i, score in zip(waiting, self.detector.check(rgb, boxes[waiting]).tolist(), strict=True):
                track = tracks[int(ids[i])]
                track.checks += 1
                if score >= self.detector.options.check_min_confidence:
                    track.face = True
                elif track.checks >= MAX_CHECKS:
                    track.face = False
                    log.info("track %d is not a face (second look %d times): not reported", track.track_id,
                             track.checks)
        return np.array([i for i, tid in enumerate(ids.tolist()) if tracks[tid].face], np.int64)

    def _detect(self, rgb: np.ndarray) -> Detections:
        det = self.detector.detect(rgb)
        return det.largest(self.options.max_faces) if len(det) > self.options.max_faces else det

    def _apply_head(self, embeddings: np.ndarray, base_probs: np.ndarray, ids: np.ndarray
                    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """The head's ``(probs, labels)`` if one is set, else the base model's."""
        head = self.head
        if head is None:
            return base_probs, EMOTIONS
        if len(ids):
            probs, labels = head(embeddings, base_probs, ids)
            return probs, tuple(labels)
        labels = tuple(getattr(head, "labels", EMOTIONS))  # no face: keep the head's labels, no gauge flip-flop
        return np.zeros((0, len(labels)), base_probs.dtype), labels

    # -- listeners and the worker (emowidgets.worker) --------------------------------------------------
    def add_listener(self, fn: Callable[[FrameResult], None], *, slot: str | None = None) -> None:
        """Call ``fn(result)`` after each processed frame of any source (:meth:`process_and_deliver`), on the
        thread that processed it.

        With ``slot`` (e.g. ``"camera"``), ``fn`` takes the place of the listener added before under that
        slot: a widget built again on the same pipeline (a re-run notebook cell) replaces, not adds.

        Raises:
            ClosedError: the pipeline is closed.
        """
        self._worker.add_listener(fn, slot)

    def remove_listener(self, fn: Callable[[FrameResult], None]) -> None:
        """Stop calling ``fn`` (no-op if it is not a listener)."""
        self._worker.remove_listener(fn)

    def add_skip_listener(self, fn: Callable[[int], None], *, slot: str | None = None) -> None:
        """Call ``fn(seq)`` for each submitted frame that ends without a result (dropped or bad), so a
        sender waiting for results can stop counting it as in flight. ``slot`` as in :meth:`add_listener`."""
        self._worker.add_skip_listener(fn, slot)

    def remove_skip_listener(self, fn: Callable[[int], None]) -> None:
        """Stop calling ``fn`` for skipped frames."""
        self._worker.remove_skip_listener(fn)

    def has_listener(self, fn: Callable[[FrameResult], None]) -> bool:
        """Whether ``fn`` is (still) called with results: false once removed, replaced in its slot or closed."""
        return self._worker.has_listener(fn)

    @property
    def queued(self) -> tuple[int, ...]:
        """The ``seq`` of each frame waiting for the worker, oldest first (read-only; for checks)."""
        return self._worker.queued

    @property
    def reading_names(self) -> bool:
        """Whether a read of the tiles' names is running or waiting on the names thread (``read_names``)."""
        return self._gallery.reading_names

    @property
    def worker(self) -> threading.Thread | None:
        """The worker thread while the pipeline is ``RUNNING`` (``None`` otherwise; read-only)."""
        return self._worker.thread

    @property
    def listener_count(self) -> int:
        """Result and skip listeners attached now (for leak checks)."""
        return self._worker.listener_count

    @property
    def state(self) -> PipelineState:
        """Where the pipeline is in its life (read-only): ``RUNNING`` from :meth:`start` to :meth:`stop`."""
        if self._worker.closed:
            return PipelineState.CLOSED
        return PipelineState.CREATED if self._worker.thread is None else PipelineState.RUNNING

    def start(self) -> None:
        """Start the worker thread (idempotent while running).

        Raises:
            ClosedError: the pipeline is closed.
        """
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; frames still queued are discarded. Safe from a listener (on the worker thread):
        the worker then ends after that listener returns."""
        self._worker.stop(timeout)

    def submit(self, data: bytes | memoryview, seq: int = 0, timestamp_ms: int = 0) -> None:
        """Queue an encoded frame for the worker; when the queue is full the oldest frame is dropped.

        Raises:
            ClosedError: the pipeline is closed (a frame queued then would never be processed).
        """
        self._worker.submit(data, seq, timestamp_ms)

    def process_and_deliver(self, frame: bytes | memoryview | np.ndarray, *, seq: int = 0, timestamp_ms: int = 0
                            ) -> FrameResult:
        """Process one frame of a stream and give its result to every listener, on this thread: the one path by
        which every source's results leave the pipeline (the worker's queued browser frames, a kernel source's
        frames: :meth:`~emowidgets.sources.FrameSource.run`).

        ``frame`` is encoded bytes (as :meth:`process_bytes`) or a decoded array (as :meth:`process_array`).
        Listeners are called in the order they were added; a failing one is logged and the others still get the
        result. The time taken, listeners included, counts toward the quality ladder (:meth:`record_load`). A
        frame that fails is counted in ``stats.bad_frames`` (a bug, not a bad frame, is logged with its
        traceback), skip listeners are told its ``seq``, and its error is raised for the caller to skip it.

        Raises:
            FrameError: a bad frame (or whatever else processing it raised).
            ClosedError: the pipeline is closed.
        """
        return self._worker.deliver(frame, seq, timestamp_ms)

    def _process_frame(self, frame: bytes | memoryview | np.ndarray, seq: int, timestamp_ms: int) -> FrameResult:
        """One frame of a stream, encoded or decoded: what the worker delivers."""
        if isinstance(frame, np.ndarray):
            return self.process_array(frame, seq=seq, timestamp_ms=timestamp_ms)
        return self.process_bytes(frame, seq=seq, timestamp_ms=timestamp_ms)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker, drop every listener and release the detector (again is a no-op); final.

        Safe from any thread, a listener's included: new calls get :class:`~emowidgets.errors.ClosedError` at
        once, calls already inside finish. ``close`` waits up to ``timeout`` s for those of other threads and
        then releases the detector; if one is still inside then, the last to return releases it.
        """
        if not self._worker.close(timeout):  # from here no process_* call gets in (see _entered)
            return
        self._gallery.close(timeout)
        me = threading.get_ident()
        with self._cond:
            if not self._cond.wait_for(lambda: not set(self._inside) - {me}, timeout):
                log.warning("pipeline closed while a frame is still being processed after %.0f s: its detector "
                            "is released when that frame ends", timeout)
            release = self._release_due()
        if release:
            self.detector.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frame_keys(args: tuple[int, ...], seq: int, timestamp_ms: int, method: str) -> tuple[int, int]:
    """``(seq, timestamp_ms)`` of a ``process_*`` call; positional ones are deprecated (``process_array(frame,
    1000)`` read 1000 as ``seq``, not a time)."""
    if not args:
        return seq, timestamp_ms
    if len(args) > 2:
        raise TypeError(f"{method}() takes the frame and keyword-only seq=, timestamp_ms=; got {len(args) + 1} "
                        "positional arguments")
    warnings.warn(f"{method}(frame, seq, timestamp_ms) is deprecated: pass seq= and timestamp_ms= by keyword",
                  DeprecationWarning, stacklevel=3)
    return (args[0], args[1] if len(args) > 1 else timestamp_ms)


def _repeated(values: np.ndarray) -> np.ndarray:
    """Positions whose value came before (the first of each value is kept)."""
    _, first = np.unique(values, return_index=True)
    out = np.ones(len(values), bool)
    out[first] = False
    return out


def _layout_fields(layout: GridLayout | None, face_tiles: np.ndarray) -> tuple[np.ndarray, str, str, np.ndarray]:
    """What a :class:`FrameResult` says of the grid: tiles, label, source and each face's tile."""
    if layout is None:
        return np.zeros((0, 4), np.float32), "", "none", face_tiles
    return layout.tiles, layout.label, layout.source, face_tiles


def _check_backbone(head: object, backbone_id: str, embed_dim: int) -> None:
    """Refuse a head whose adapters were fitted on another backbone: every frame would fail otherwise."""
    adapters = [head, getattr(head, "room", None), *getattr(head, "people", {}).values()]
    for adapter in adapters:
        theirs = getattr(adapter, "backbone_id", None)
        dim = getattr(adapter, "embed_dim", embed_dim)
        if (theirs and theirs != backbone_id) or dim != embed_dim:
            raise ModelFileError(f"this adapter was fitted on another backbone ({theirs!r}, {dim}-d embeddings) "
                                 f"than this pipeline's model ({backbone_id!r}, {embed_dim}-d): use it with the "
                                 "model it was made for, or recalibrate with this one")

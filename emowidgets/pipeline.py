"""Frame bytes -> decode -> detect -> crop -> classify -> track/smooth, on one worker thread.

The browser sends frames faster than or as fast as we can process them; the input queue is bounded
and drops the *oldest* frame when full, so results stay current and memory stays flat. A bad frame
is counted in ``stats.bad_frames`` and skipped; the worker never dies from one.
Listeners are called on the worker thread with each :class:`FrameResult`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference
from emowidgets.decode import as_rgb, decode
from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import FrameError
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import EMOTIONS
from emowidgets.preprocess import crop_faces
from emowidgets.tracking import Tracker

log = logging.getLogger("emowidgets.pipeline")


class Head(Protocol):
    """Replaces the base classifier's output, e.g. a few-shot adapter (see ``emowidgets.adapter``)."""

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Return ``(probs (N, C), labels)`` for the faces of one frame."""
        ...


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """Settings of a :class:`Pipeline`.

    Attributes:
        detector: face detector settings.
        classifier: emotion model settings.
        smoothing: weight of the newest frame in each face's moving average (1 = raw scores).
        queue_size: frames waiting for the worker; more arrivals drop the oldest.
        max_faces: faces classified per frame (largest first).
        keep_crops: put the aligned 48x48 crops in each result (kernel memory only; for calibration).
        auto_calibrate: centre each tracked face on its own resting face, without labels (see
            :mod:`emowidgets.autocalib`); off by default.
        auto_calibration: window and memory settings of ``auto_calibrate``.
    """

    detector: DetectorOptions = dataclasses.field(default_factory=DetectorOptions)
    classifier: ClassifierOptions = dataclasses.field(default_factory=ClassifierOptions)
    smoothing: float = 0.4
    queue_size: int = 2
    max_faces: int = 64
    keep_crops: bool = False
    auto_calibrate: bool = False
    auto_calibration: AutoCalibrationOptions = dataclasses.field(default_factory=AutoCalibrationOptions)


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
        crops: ``(N, 48, 48)`` float32 aligned face crops if ``keep_crops`` was set, else ``(0, 48, 48)``.
        timings: milliseconds per stage (``decode``, ``detect``, ``crop``, ``classify``, ``total``).
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
    crops: np.ndarray
    timings: dict[str, float]

    @property
    def dominant(self) -> list[str]:
        """Most likely label of each face."""
        return [self.labels[i] for i in self.probs.argmax(axis=1)] if len(self.probs) else []

    def to_message(self) -> dict[str, Any]:
        """A small JSON-able summary for the browser: boxes in 0-1 units, ids, labels, scores."""
        w, h = max(self.width, 1), max(self.height, 1)
        scale = np.array([w, h, w, h], np.float32)
        return {
            "seq": self.seq,
            "faces": [
                {"box": [round(float(v), 4) for v in box / scale], "id": int(tid), "label": label,
                 "score": round(float(p.max()), 3)}
                for box, tid, label, p in zip(self.boxes, self.track_ids, self.dominant, self.probs, strict=True)
            ],
            "ms": round(self.timings.get("total", 0.0), 1),
        }


@dataclasses.dataclass
class PipelineStats:
    """Counters since start; read them from any thread."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad_frames: int = 0
    last_error: str = ""


class Pipeline:
    """The live processing chain. Use ``process_*`` synchronously, or ``start()`` + ``submit()``."""

    def __init__(self, detector: FaceDetector, classifier: EmotionClassifier, options: PipelineOptions) -> None:
        self.options = options
        self.detector = detector
        self.classifier = classifier
        self.tracker = Tracker(smoothing=options.smoothing)
        self.head: Head | None = None
        self.autocalib = AutoCalibrator(read_reference(classifier.metadata, classifier.embed_dim),
                                        options.auto_calibration) if options.auto_calibrate else None
        """Label-free per-face calibration (None when ``options.auto_calibrate`` is off)."""
        self.stats = PipelineStats()
        self._listeners: list[Callable[[FrameResult], None]] = []
        self._skip_listeners: list[Callable[[int], None]] = []
        self._queue: collections.deque[tuple[bytes, int, int]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False

    @classmethod
    def create_from_options(cls, options: PipelineOptions | None = None, warmup: bool = True) -> Pipeline:
        """Load the detector and the classifier; compile every batch bucket unless ``warmup=False``."""
        options = options or PipelineOptions()
        classifier = EmotionClassifier.create_from_options(options.classifier)
        if warmup:
            classifier.warmup()
        return cls(FaceDetector.create_from_options(options.detector), classifier, options)

    # -- synchronous API ---------------------------------------------------------------------------
    def process_bytes(self, data: bytes | memoryview, seq: int = 0, timestamp_ms: int = 0) -> FrameResult:
        """Process one encoded frame (JPEG/PNG). Raises :class:`FrameError` for a bad frame."""
        t0 = time.perf_counter()
        rgb = decode(data)
        return self._process(rgb, seq, timestamp_ms, t0, (time.perf_counter() - t0) * 1000)

    def process_array(self, image: np.ndarray, seq: int = 0, timestamp_ms: int = 0) -> FrameResult:
        """Process one decoded frame (``(H, W, 3)`` RGB, gray or RGBA ``uint8``)."""
        t0 = time.perf_counter()
        return self._process(as_rgb(image), seq, timestamp_ms, t0, 0.0)

    def process_image(self, image: bytes | memoryview | np.ndarray) -> FrameResult:
        """Process one independent photo (encoded bytes or a decoded array), for batch work.

        Unlike the ``process_*`` frame methods, nothing carries over between calls: no tracking, no
        smoothing, no auto-calibration, so a photo gets the same result whatever came before it. Track
        ids are 0 (per-person adapters of an :class:`~emowidgets.adapter.AdapterSet` do not apply; a
        room adapter does). Raises :class:`FrameError` for bad bytes.
        """
        t0 = time.perf_counter()
        if isinstance(image, np.ndarray):
            return self._process(as_rgb(image), 0, 0, t0, 0.0, track=False)
        rgb = decode(image)
        return self._process(rgb, 0, 0, t0, (time.perf_counter() - t0) * 1000, track=False)

    def _process(self, rgb: np.ndarray, seq: int, timestamp_ms: int, t0: float, decode_ms: float,
                 track: bool = True) -> FrameResult:
        t1 = time.perf_counter()
        det = self.detector.detect(rgb)
        if len(det) > self.options.max_faces:
            det = det.take(np.argsort(-(det.boxes[:, 2] * det.boxes[:, 3]))[: self.options.max_faces])
        t2 = time.perf_counter()
        crops = crop_faces(rgb, det, self.detector.options.model)
        t3 = time.perf_counter()
        out = self.classifier.classify(crops)
        embeddings, base_probs, labels = out.embeddings, out.probs, EMOTIONS
        t4 = time.perf_counter()
        ids = self.tracker.assign(det.boxes, embeddings) if track else np.zeros(len(embeddings), np.int64)
        if track and self.autocalib is not None and len(ids):
            embeddings = self.autocalib(ids, embeddings)
            base_probs = self.classifier.probs_from_embeddings(embeddings)
        probs, head = base_probs, self.head
        if head is not None and len(ids):
            probs, labels = head(embeddings, base_probs, ids)
        elif head is not None:  # no face: keep the head's label set so a gauge doesn't flip back to the 7 emotions
            labels = tuple(getattr(head, "labels", labels))
            probs = np.zeros((0, len(labels)), probs.dtype)
        smoothed = self.tracker.smooth(ids, probs) if track else probs
        t5 = time.perf_counter()
        timings = {"decode": decode_ms, "detect": (t2 - t1) * 1000, "crop": (t3 - t2) * 1000,
                   "classify": (t4 - t3) * 1000, "head": (t5 - t4) * 1000, "total": (t5 - t0) * 1000}
        kept = crops if self.options.keep_crops else crops[:0]
        return FrameResult(seq, timestamp_ms, rgb.shape[1], rgb.shape[0], det.boxes, det.scores, ids, smoothed,
                           probs, embeddings, tuple(labels), kept, timings)

    # -- threaded API ------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[FrameResult], None]) -> None:
        """Call ``fn(result)`` on the worker thread after each processed frame."""
        with self._cond:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[FrameResult], None]) -> None:
        """Stop calling ``fn``."""
        with self._cond:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def add_skip_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(seq)`` for each submitted frame that ends without a result (dropped or bad), so a
        sender waiting for results can stop counting it as in flight."""
        with self._cond:
            self._skip_listeners.append(fn)

    def remove_skip_listener(self, fn: Callable[[int], None]) -> None:
        """Stop calling ``fn`` for skipped frames."""
        with self._cond:
            if fn in self._skip_listeners:
                self._skip_listeners.remove(fn)

    def _skipped(self, seq: int) -> None:
        for fn in list(self._skip_listeners):
            try:
                fn(seq)
            except Exception:
                log.exception("skip listener %r failed", fn)

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._work, name="emowidgets-pipeline", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; frames still queued are discarded."""
        with self._cond:
            self._running = False
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, data: bytes | memoryview, seq: int = 0, timestamp_ms: int = 0) -> None:
        """Queue an encoded frame for the worker; when the queue is full the oldest frame is dropped."""
        dropped: int | None = None
        with self._cond:
            self.stats.received += 1
            if len(self._queue) >= self.options.queue_size:
                dropped = self._queue.popleft()[1]
                self.stats.dropped += 1
            self._queue.append((bytes(data), seq, timestamp_ms))
            self._cond.notify()
        if dropped is not None:
            self._skipped(dropped)

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._cond.wait()
                if not self._running:
                    return
                data, seq, ts = self._queue.popleft()
                listeners = list(self._listeners)
            try:
                result = self.process_bytes(data, seq, ts)
            except Exception as exc:  # the live loop must survive anything one frame does
                if not isinstance(exc, FrameError):
                    log.exception("frame %d failed", seq)
                with self._cond:
                    self.stats.bad_frames += 1
                    self.stats.last_error = str(exc) if isinstance(exc, FrameError) else f"{type(exc).__name__}: {exc}"
                self._skipped(seq)
                continue
            with self._cond:
                self.stats.processed += 1
            for fn in listeners:
                try:
                    fn(result)
                except Exception:
                    log.exception("listener %r failed", fn)

    def close(self) -> None:
        """Stop the worker and release the detector."""
        self.stop()
        self.detector.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

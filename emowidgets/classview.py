"""Class view: one tile per tracked face, a class emotion timeline and a "needs attention" list.

``classroom(source)`` wires a source (a shared video-call gallery, a camera, an ipywebrtc stream or a
video file) to a :class:`~emowidgets.pipeline.Pipeline` and a :class:`ClassView`. The view's synced
traits hold numbers only (ids, names, scores, histories); no pixel ever reaches a trait or the log.
Names given by clicking a tile live in this kernel's memory (and the browser showing them) only;
they are written to disk only if logging is switched on.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import numpy as np
import traitlets
from ipywebrtc import MediaStream

from emowidgets.classlog import ClassLog
from emowidgets.model import EMOTIONS
from emowidgets.pipeline import FrameResult, Pipeline
from emowidgets.report import COLORS, NEGATIVE
from emowidgets.sources import SourceState, VideoFileSource, pipeline_options
from emowidgets.widgets import CameraWidget

STATIC = Path(__file__).parent / "static"
_NEG = np.isin(np.array(EMOTIONS), NEGATIVE)
_HAPPY = EMOTIONS.index("happy")


def valence(probs: np.ndarray) -> float:
    """P(happy) minus P(angry, disgust, fear, sad): -1 (negative) .. +1 (happy), 0 for neutral/surprise."""
    return float(probs[_HAPPY] - probs[_NEG].sum())


@dataclasses.dataclass
class _Face:
    track_id: int
    first_seen: float
    last_seen: float
    frames: int = 0
    probs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    spark: collections.deque[tuple[float, float]] = dataclasses.field(default_factory=collections.deque)
    negative: collections.deque[tuple[float, float]] = dataclasses.field(default_factory=collections.deque)


class ClassView(anywidget.AnyWidget):
    """Tiles per face and a class panel, updated from pipeline results (call :meth:`update`).

    Thresholds are traits the page can edit: a face *needs attention* when its mean negative score
    (angry + disgust + fear + sad) over the last ``negative_seconds`` is at least ``negative_threshold``,
    or when it has been absent for more than ``absent_seconds``.
    """

    _esm = STATIC / "classview.js"
    _css = STATIC / "classview.css"

    labels = traitlets.List(traitlets.Unicode(), list(EMOTIONS)).tag(sync=True)
    colors = traitlets.List(traitlets.Unicode(), list(COLORS)).tag(sync=True)
    faces = traitlets.List(traitlets.Dict(), help="one dict per face: id, present, absent_s, probs, spark"
                           ).tag(sync=True)
    names = traitlets.Dict(help="track id (as text) -> name given by clicking the tile").tag(sync=True)
    history = traitlets.List(traitlets.List(), help="[t_s, 7 class shares, faces present] per second"
                             ).tag(sync=True)
    attention = traitlets.List(traitlets.Dict(), help="faces needing attention: id, reason").tag(sync=True)
    status = traitlets.Unicode("starting").tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)
    negative_threshold = traitlets.Float(0.5, min=0.0, max=1.0).tag(sync=True)
    negative_seconds = traitlets.Float(20.0, min=1.0).tag(sync=True)
    absent_seconds = traitlets.Float(30.0, min=1.0).tag(sync=True)
    window_minutes = traitlets.Float(10.0, min=1.0, help="span of the class chart").tag(sync=True)
    logging = traitlets.Bool(False, help="append numbers to log_path while on").tag(sync=True)
    log_path = traitlets.Unicode("").tag(sync=True)
    min_frames = traitlets.Int(5, help="frames a track needs before it gets a tile (hides flicker)")
    max_rate = traitlets.Float(4.0, help="most tile/attention updates per second")
    log_every_s = traitlets.Float(1.0, help="seconds between logged frames")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._faces: dict[int, _Face] = {}
        self._t0 = time.monotonic()
        self._last_push = self._last_sample = self._last_log = -1e9
        self._frame_times: collections.deque[float] = collections.deque(maxlen=30)
        self._log: ClassLog | None = None
        self.observe(self._on_logging, "logging")

    def _on_logging(self, change: dict[str, Any]) -> None:
        with self._lock:
            if change["new"] and self._log is None:
                if not self.log_path:
                    self.log_path = f"class_log_{datetime.datetime.now():%Y%m%d_%H%M%S}.parquet"
                self._log = ClassLog(self.log_path)
            elif not change["new"] and self._log is not None:
                self._log.close()
                self._log = None

    def update(self, result: FrameResult, now: float | None = None) -> None:
        """Fold one result in (any thread); ``now`` is a ``time.monotonic()`` value (default: now)."""
        now = time.monotonic() if now is None else now
        names = {int(k): v for k, v in self.names.items()}
        with self._lock:
            self._frame_times.append(now)
            for tid, probs in zip(result.track_ids, result.probs, strict=True):
                face = self._faces.setdefault(int(tid), _Face(int(tid), now, now))
                face.last_seen, face.frames = now, face.frames + 1
                if len(probs) == len(EMOTIONS):
                    face.probs = probs.astype(np.float64)
                face.negative.append((now, float(face.probs[_NEG].sum())))
                if not face.spark or now - face.spark[-1][0] >= 1.0:
                    face.spark.append((now, valence(face.probs)))
                for series, keep in ((face.spark, 60.0), (face.negative, self.negative_seconds)):
                    while series and now - series[0][0] > keep:
                        series.popleft()
            if self._log is not None and now - self._last_log >= self.log_every_s and len(result.track_ids):
                self._log.log(result, names)
                self._last_log = now
            if now - self._last_sample >= 1.0:
                self._last_sample = now
                self._sample(now)
            if now - self._last_push >= 1.0 / self.max_rate:
                self._last_push = now
                self._push(now)

    def _shown(self) -> list[_Face]:
        return [f for f in self._faces.values() if f.frames >= self.min_frames]

    def _sample(self, now: float) -> None:
        present = [f for f in self._shown() if now - f.last_seen <= 1.0]
        if not present and not self.history:
            return  # the chart starts with the first face
        shares = np.mean([f.probs for f in present], axis=0) if present else np.zeros(len(EMOTIONS))
        point = [round(now - self._t0, 1), *(round(float(v), 3) for v in shares), len(present)]
        span = self.window_minutes * 60
        self.history = [p for p in self.history if point[0] - p[0] <= span] + [point]

    def _push(self, now: float) -> None:
        faces, attention = [], []
        for f in sorted(self._shown(), key=lambda f: f.track_id):
            absent_s = now - f.last_seen
            present = absent_s <= 1.0
            faces.append({"id": f.track_id, "present": present, "absent_s": round(absent_s, 1),
                          "probs": [round(float(v), 3) for v in f.probs],
                          "spark": [[round(t - now, 1), round(v, 3)] for t, v in f.spark]})
            covered = f.negative and now - f.negative[0][0] >= self.negative_seconds / 2
            negative = float(np.mean([v for _, v in f.negative])) if f.negative else 0.0
            if absent_s > self.absent_seconds:
                attention.append({"id": f.track_id, "reason": f"absent {absent_s:.0f} s"})
            elif present and covered and negative >= self.negative_threshold:
                attention.append({"id": f.track_id, "reason": f"negative {100 * negative:.0f}% "
                                                              f"over {self.negative_seconds:.0f} s"})
        times = self._frame_times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        self.set_trait("fps", round(fps, 1))
        self.faces = faces
        self.attention = attention

    def refresh(self) -> None:
        """Recompute tiles and attention now (absent timers keep running without new frames)."""
        with self._lock:
            self._push(time.monotonic())

    def close(self) -> None:
        """Close the log (if on) and the widget."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
        super().close()


class Classroom(ipywidgets.VBox):  # type: ignore[misc]
    """What :func:`classroom` returns: ``view`` (the :class:`ClassView`), ``camera`` (browser sources),
    ``video`` (file sources) and ``pipeline``. ``close()`` stops everything."""

    def __init__(self, view: ClassView, pipeline: Pipeline, camera: CameraWidget | None = None,
                 video: VideoFileSource | None = None) -> None:
        super().__init__(children=[c for c in (camera, view) if c is not None])
        self.view, self.pipeline, self.camera, self.video = view, pipeline, camera, video
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if camera is not None:
            pipeline.add_listener(view.update)
            camera.observe(self._camera_status, "status")
            view.status = camera.status
            pipeline.start()
        if video is not None:
            self._threads.append(threading.Thread(target=self._play, name="emowidgets-classroom-video",
                                                  daemon=True))
        self._threads.append(threading.Thread(target=self._tick, name="emowidgets-classroom-tick", daemon=True))
        for t in self._threads:
            t.start()

    def _camera_status(self, change: dict[str, Any]) -> None:
        self.view.status = change["new"]

    def _play(self) -> None:
        assert self.video is not None
        self.view.status = f"playing {self.video.path.name}"
        try:
            self.video.run(self.pipeline, self.view.update)
        except Exception as exc:  # shown in the view; the kernel stays usable
            self.view.status = f"error: {exc}"
            return
        if self.video.state is SourceState.ENDED:
            self.view.status = "video ended"
        elif self.video.state is SourceState.STOPPED:
            self.view.status = "stopped"

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.view.refresh()

    def close(self) -> None:
        """Stop the source, the pipeline and the widgets."""
        self._stop.set()
        if self.video is not None:
            self.video.stop()
        if self.camera is not None:
            self.pipeline.remove_listener(self.view.update)
            self.camera.close()
        for t in self._threads:
            t.join(5.0)
        self.pipeline.close()
        self.view.close()
        super().close()


def classroom(source: str | Path | MediaStream = "screen", model: str | None = None, *,
              preset: str | None = None, log_path: str | Path | None = None, **camera_options: Any) -> Classroom:
    """Watch a class: ``"screen"`` (share the video-call gallery window), ``"camera"``, an ipywebrtc stream,
    or a video file path.

    Args:
        source: ``"screen"``, ``"camera"``, an ipywebrtc ``MediaStream`` or the path of a video file.
        model: classifier, ``"main"`` or ``"fast"``; default ``"main"`` for a camera, ``"fast"`` otherwise
            (25 faces per frame cost about half as much).
        preset: detector preset, ``"camera"`` (one short-range pass) or ``"gallery"`` (3x3 tiles, for
            up to ~36 small faces); default ``"camera"`` for a camera, ``"gallery"`` otherwise.
        log_path: where logging (switched on in the view) writes; default ``class_log_<time>.parquet``.
        **camera_options: :class:`~emowidgets.widgets.CameraWidget` traits (``width``, ``height``, ...).

    Raises:
        VideoFileError: a video path that is missing or not a video.
    """
    is_camera = isinstance(source, str) and source == "camera"
    preset = preset or ("camera" if is_camera else "gallery")
    model = model or ("main" if is_camera else "fast")
    video = None
    if not isinstance(source, MediaStream) and source not in ("screen", "camera"):
        video = VideoFileSource(source, realtime=True)
    pipeline = Pipeline.create_from_options(pipeline_options(preset, model), warmup=True)
    view = ClassView(log_path=str(log_path or ""))
    camera = None if video is not None else CameraWidget(source, pipeline=pipeline, **camera_options)
    return Classroom(view, pipeline, camera=camera, video=video)

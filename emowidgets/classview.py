"""Class view: one tile per tracked face, a class emotion timeline and a "needs attention" list.

:func:`emowidgets.lesson.classroom` wires a source (a shared video-call gallery, a camera, an ipywebrtc stream
or a video file) to a :class:`~emowidgets.pipeline.Pipeline` and a :class:`ClassView`. The view's synced
traits hold numbers only (ids, names, scores, histories, label names); no pixel ever reaches a trait or
the log. Names given by clicking a tile live in this kernel's memory (and the browser showing them) only;
they are written to disk only if logging is switched on, or in the index of saved adapters.

The page keeps each tile (keyed by track id) and changes only its text and sparkline, so clicks land while
the stream runs. A tile and its face's box on the preview share a colour and a name (the camera widget gets
``names``, text only), and hovering one highlights the other. A recording's frames reach the page through a
:class:`~emowidgets.widgets.FramePreview`, scaled down, never as a trait.

A tile's *calibrate* button opens a :class:`~emowidgets.calibration.CalibrationWidget` for that student
(a name is needed first: adapters are kept by name, see :mod:`emowidgets.classadapters`); *calibrate room*
opens one whose shots are every face in view.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from emowidgets.attention import AttentionRule, FaceAttention
from emowidgets.classlog import ClassLog
from emowidgets.errors import EmowidgetsError, OptionsError
from emowidgets.layout import MAX_SIDE, grid_text, parse_grid
from emowidgets.vocab import COLORS, EMOTIONS, FrameResult, base_scores, valence
from emowidgets.widgets import LEVEL_LEGEND, TRACK_COLORS, level_text

log = logging.getLogger("emowidgets.classview")

STATIC = Path(__file__).parent / "static"
NO_FACES_S = 3.0
"""Frames arriving with no face for this long: the view says that no faces were found."""
NO_FACES_ENDED = "video ended: no faces found in it"
"""The status of a recording that ended without a face in any frame (rather than an empty chart)."""
_MOVED = ("classroom", "Classroom", "PreviewedVideo")


@functools.lru_cache(maxsize=32)
def grid_choice(value: str) -> str | None:
    """A teacher's gallery-grid choice in the form ``Pipeline.grid`` takes: ``"auto"``, ``"none"`` or
    ``"RxC"`` (see :func:`~emowidgets.layout.parse_grid`); ``None`` for anything else."""
    try:
        return grid_text(parse_grid(value))
    except OptionsError:
        return None


@dataclasses.dataclass
class _Face:
    track_id: int
    first_seen: float
    last_seen: float
    frames: int = 0
    probs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    scores: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    age_ms: float = 0.0
    call_tile: int = -1  # the video-call tile it was last seen in (-1: no grid)
    score_labels: tuple[str, ...] = EMOTIONS
    spark: collections.deque[tuple[float, float]] = dataclasses.field(default_factory=collections.deque)
    attention: FaceAttention = dataclasses.field(default_factory=lambda: FaceAttention(AttentionRule()))


@dataclasses.dataclass(frozen=True)
class _Retired:
    """What is kept of a face that left: enough for the ``left`` summary and to revive its tile."""

    track_id: int
    first_seen: float
    last_seen: float
    frames: int
    attention: FaceAttention


class ClassView(anywidget.AnyWidget):
    """Tiles per face and a class panel, updated from pipeline results (call :meth:`update`).

    Thresholds are traits the page can edit: a face *needs attention* when its mean negative score
    (angry + disgust + fear + sad) over the last ``negative_seconds`` is at least ``negative_threshold`` above
    its own resting level, learned over its first ``resting_seconds`` in view (:mod:`emowidgets.attention`;
    ``attention_rule`` says it in words), or when it has been absent for more than ``absent_seconds``.

    A whole lesson stays bounded: a face absent for more than ``retention_seconds`` retires from the tiles
    and the attention list into ``left``, a compact summary of the last ``max_left`` students who left. If
    the tracker re-identifies a retired face (same track id), its tile comes back with its name, history and
    adapter; a face dropped from ``left`` forgets its name too.

    A tile shows the dominant label of the adapter that scores that face (its own, the room's, or the base
    model's 7 emotions: ``adapted``, ``room_labels``); the chart and sparklines use the base emotions only,
    and attention the base model's own scores before auto-calibration and adapters (``FrameResult.uncalibrated``).
    A tile's *calibrate* button calls ``on_calibrate(track_id)``, *calibrate room* calls ``on_calibrate(None)``.
    """

    _esm = STATIC / "classview.js"
    _css = STATIC / "classview.css"

    labels = traitlets.List(traitlets.Unicode(), list(EMOTIONS)).tag(sync=True)
    colors = traitlets.List(traitlets.Unicode(), list(COLORS)).tag(sync=True)
    track_colors = traitlets.List(traitlets.Unicode(), list(TRACK_COLORS), help="tile colours by track id, as "
                                  "the preview's boxes").tag(sync=True)
    link = traitlets.Unicode("", help="hover events are shared with the camera widget of the same link"
                             ).tag(sync=True)
    faces = traitlets.List(traitlets.Dict(), help="one dict per face: id, present, absent_s, probs (7 base "
                           "emotions), top ([label, score] in its adapter's labels), spark, age_ms (since its "
                           "scores were last computed), learning (0..1 of its resting level learned), rise "
                           "(mean negative score over its resting level; None while learning), camera_off "
                           "(absent, and its call tile holds no face)").tag(sync=True)
    camera_off = traitlets.List(traitlets.Dict(), help="call tiles without a face that no tile's student last "
                                "sat in: tile (index in the call's grid)").tag(sync=True)
    no_faces = traitlets.Bool(False, help=f"frames arrive but no face was seen for {NO_FACES_S:.0f} s"
                              ).tag(sync=True)
    names = traitlets.Dict(help="track id (as text) -> name given by clicking the tile").tag(sync=True)
    history = traitlets.List(traitlets.List(), help="[t_s, 7 class shares, faces present] per second"
                             ).tag(sync=True)
    attention = traitlets.List(traitlets.Dict(), help="faces needing attention: id, reason").tag(sync=True)
    status = traitlets.Unicode("starting").tag(sync=True)
    notice = traitlets.Unicode("", help="a message to the teacher, e.g. why calibration did not open"
                               ).tag(sync=True)
    others = traitlets.Unicode("", help="a warning when other views run on this computer (they share its processor)"
                               ).tag(sync=True)
    adapted = traitlets.Dict(help="track id (as text) -> labels of that face's own adapter").tag(sync=True)
    room_labels = traitlets.List(traitlets.Unicode(), help="labels of the room adapter (empty: none)"
                                 ).tag(sync=True)
    grid = traitlets.Unicode("auto", help="the shared call's tile grid: 'auto' (found in the frames), 'none' "
                             "or rows x cols as 'RxC' (up to 10x10); any other value leaves it as it was and "
                             "says why in `notice`").tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)
    level = traitlets.Unicode("", help="quality level · frame size of the latest result").tag(sync=True)
    level_help = traitlets.Unicode(LEVEL_LEGEND, read_only=True, help="the level line in words").tag(sync=True)
    negative_threshold = traitlets.Float(AttentionRule.margin, min=0.0, max=1.0, help="rise of the mean "
                                         "negative score above the student's resting level that flags them"
                                         ).tag(sync=True)
    negative_seconds = traitlets.Float(AttentionRule.window_s, min=1.0).tag(sync=True)
    resting_seconds = traitlets.Float(AttentionRule.resting_s, min=1.0, help="seconds in view a student's "
                                      "resting level is learned from").tag(sync=True)
    attention_rule = traitlets.Unicode(AttentionRule().describe(), help="the attention rule in words (read-only)"
                                       ).tag(sync=True)
    absent_seconds = traitlets.Float(30.0, min=1.0).tag(sync=True)
    retention_seconds = traitlets.Float(120.0, min=1.0, help="a face absent this long retires into `left`"
                                        ).tag(sync=True)
    left = traitlets.List(traitlets.Dict(), help="students who left, most recent first: id, name, present_s "
                          "(time in view), left_s (when they left, seconds since start), left_at (the same as "
                          "this computer's clock time, 'HH:MM')").tag(sync=True)
    max_left = traitlets.Int(100, min=0, help="retired faces remembered (for `left` and re-identification)")
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
        self._left: collections.OrderedDict[int, _Retired] = collections.OrderedDict()
        self._t0 = time.monotonic()
        self._t0_clock = time.time()  # the wall clock at _t0: a time in view is shown as a clock time
        self._last_push = self._last_sample = self._last_log = -1e9
        self._frame_times: collections.deque[float] = collections.deque(maxlen=30)
        self._level: tuple[str, int, int] | None = None  # the latest result's level, width, height
        self._empty_tiles: set[int] = set()  # the latest result's call tiles without a face
        self._first_result = self._last_result = self._last_face = -1e9
        self.saw_faces = False
        """Whether any result held a face."""
        self._log: ClassLog | None = None
        self._logged: set[str] = set()  # paths this view's logs wrote (switched on again, a log appends there)
        self._kept: Any = None  # rows a failed log could not write (a pyarrow table), for the next log
        self.on_calibrate: Callable[[int | None], None] | None = None
        self._from_call: dict[str, str] = {}  # track id -> the name read from the call that the view gave it
        self.observe(self._on_logging, "logging")
        self.observe(self._on_rule, ["negative_threshold", "negative_seconds", "resting_seconds"])
        self._on_rule()
        self.on_msg(self._on_custom_msg)

    _grid = "auto"  # the last accepted grid, what a refused one falls back to

    @traitlets.validate("grid")
    def _valid_grid(self, proposal: dict[str, Any]) -> str:
        choice = grid_choice(str(proposal["value"]))
        if choice is None:
            self.notice = (f"gallery grid {proposal['value']!r} not understood: type auto, none or rows x cols "
                           f"such as 7x7 (at most {MAX_SIDE}x{MAX_SIDE})")
            choice = self._grid
        elif self.notice.startswith("gallery grid "):
            self.notice = ""
        self._grid = choice  # self.grid may already hold the proposal (a page's change is validated late)
        return choice

    def _on_custom_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if content.get("type") == "calibrate" and self.on_calibrate is not None:
            tid = content.get("id")
            self.on_calibrate(None if tid is None else int(tid))

    def _on_logging(self, change: dict[str, Any]) -> None:
        """Open or close the log. Switched on again, a log appends to the file this view wrote before, and first
        writes the rows a failed log kept in memory; a log that cannot start or write says why in ``notice``."""
        trouble = ""
        with self._lock:
            if change["new"] and self._log is None:
                if not self.log_path:
                    self.log_path = f"class_log_{datetime.datetime.now():%Y%m%d_%H%M%S}.parquet"
                try:
                    self._log = ClassLog(self.log_path, append=self.log_path in self._logged)
                except (OSError, EmowidgetsError) as exc:
                    trouble = f"logging could not start: {exc}"
                else:
                    self._logged.add(self.log_path)
                    if self._kept is not None:
                        self._log.extend(self._kept)
                        self._kept = None
                    trouble = self._log_trouble()
            elif not change["new"] and self._log is not None:
                self._log.close()
                trouble = self._log_trouble()
                self._log = None
        if trouble:
            self.notice = trouble
            self.logging = False

    def _log_trouble(self) -> str:
        """If the log failed (a full disk): close it, keep its unsaved rows for the next log, say so (else ``""``).
        Called holding the lock."""
        log_ = self._log
        if log_ is None or not log_.failure:
            return ""
        log_.close()
        self._keep(log_.unsaved())
        self._log = None
        return (f"logging stopped: {log_.failure} — {self._kept.num_rows} rows kept in memory, save elsewhere "
                "(set the log path to another folder and switch logging on again, or call "
                "view.save_log('other/folder/log.parquet'))")

    def _keep(self, rows: Any) -> None:
        """Add a failed log's unsaved rows (a pyarrow table) to those kept for the next log."""
        import pyarrow as pa

        self._kept = rows if self._kept is None else pa.concat_tables([self._kept, rows])

    @property
    def unsaved_rows(self) -> int:
        """Rows of the log kept in memory because they could not be written (a full disk); :meth:`save_log`
        writes them elsewhere, and so does switching logging on again with another ``log_path``."""
        with self._lock:
            return 0 if self._kept is None else self._kept.num_rows

    def save_log(self, path: str | Path) -> int:
        """Write the rows kept in memory after a failed log (:attr:`unsaved_rows`) to a new class log at ``path``
        (``.parquet`` or ``.csv``); works after :meth:`close` too. Returns how many rows were written.

        Raises:
            OptionsError: ``path`` does not end in ``.parquet`` or ``.csv``, or is a file already (the failed log
                itself, whose rows on disk the kept ones do not repeat).
            OSError: ``path`` cannot be written either (the rows stay kept).
        """
        if Path(path).exists():
            raise OptionsError(f"{path} exists: save the kept rows to a new file (the failed log keeps what it "
                               "wrote, these are the rows it could not write)")
        with self._lock:
            if self._kept is None:
                return 0
            with ClassLog(path) as log_:
                log_.extend(self._kept)
            if log_.failure:
                raise OSError(f"cannot write the class log to {path}: {log_.failure}; the "
                              f"{self._kept.num_rows} rows stay kept in memory")
            self._kept = None
            return log_.rows_written

    def _rule(self) -> AttentionRule:
        return AttentionRule(self.negative_threshold, self.negative_seconds, self.resting_seconds)

    def _on_rule(self, _change: Any = None) -> None:
        rule = self._rule()
        with self._lock:
            for face in self._faces.values():
                face.attention.rule = rule
        self.attention_rule = rule.describe()

    def update(self, result: FrameResult, now: float | None = None) -> None:
        """Fold one result in (any thread); ``now`` is a ``time.monotonic()`` value (default: now)."""
        now = time.monotonic() if now is None else now
        trouble = ""
        self._take_call_names(result)
        names = {int(k): v for k, v in self.names.items() if str(k).lstrip("-").isdigit()}
        base = base_scores(result.probs, result.labels)
        ages = result.ages_ms
        with self._lock:
            self._frame_times.append(now)
            self._level = (result.level, result.width, result.height)
            self._empty_tiles = set(result.empty_tiles.tolist())
            if self._first_result < 0:
                self._first_result = now
            self._last_result = now
            if len(result.track_ids):
                self._last_face = now
                self.saw_faces = True
            for tid, scores, probs, own, age, tile in zip(result.track_ids, result.probs, base, result.uncalibrated,
                                                          ages, result.face_tiles, strict=True):
                face = self._faces.get(int(tid))
                if face is None:  # a new face, or a retired one the tracker re-identified: its tile comes back
                    old = self._left.pop(int(tid), None)
                    face = _Face(int(tid), now, now, attention=FaceAttention(self._rule())) if old is None else \
                        _Face(int(tid), old.first_seen, now, old.frames, attention=old.attention)
                    self._faces[int(tid)] = face
                face.last_seen, face.frames = now, face.frames + 1
                face.probs = probs.astype(np.float64)
                face.scores, face.score_labels = scores, result.labels
                face.age_ms = float(age)
                face.call_tile = int(tile)
                face.attention.observe(now, own.astype(np.float64))  # the base model's own, uncalibrated scores
                if not face.spark or now - face.spark[-1][0] >= 1.0:
                    face.spark.append((now, valence(face.probs)))
                while face.spark and now - face.spark[0][0] > 60.0:
                    face.spark.popleft()
            if self._log is not None and now - self._last_log >= self.log_every_s and len(result.track_ids):
                if result.labels != EMOTIONS:
                    result = dataclasses.replace(result, probs=base, labels=EMOTIONS)
                self._log.log(result, names)
                self._last_log = now
                trouble = self._log_trouble()
            if now - self._last_sample >= 1.0:
                self._last_sample = now
                self._sample(now)
            if now - self._last_push >= 1.0 / self.max_rate:
                self._last_push = now
                self._push(now)
        if trouble:  # outside the lock: switching logging off calls _on_logging
            self.notice = trouble
            self.logging = False

    def _take_call_names(self, result: FrameResult) -> None:
        """Name each face after the name read in its call tile (``result.tile_names``), unless the teacher
        typed one: a name the view did not put there itself is the teacher's and stays."""
        if not result.tile_names:
            return
        names = dict(self.names)
        for tid, tile in zip(result.track_ids.tolist(), result.face_tiles.tolist(), strict=True):
            read = result.tile_names[tile] if 0 <= tile < len(result.tile_names) else ""
            key = str(tid)
            if read and names.get(key, self._from_call.get(key)) == self._from_call.get(key):
                names[key] = self._from_call[key] = read
        if names != self.names:
            self.names = names

    def _top(self, face: _Face) -> tuple[str, float]:
        """The face's dominant label among those of the adapter that scores it."""
        own = self.adapted.get(str(face.track_id)) or self.room_labels or EMOTIONS
        cols = [i for i, label in enumerate(face.score_labels) if label in own] or range(len(face.score_labels))
        best = max(cols, key=lambda i: face.scores[i])
        return face.score_labels[best], round(float(face.scores[best]), 3)

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

    def _retire(self, now: float) -> None:
        """Move faces absent for more than ``retention_seconds`` into ``left``; forget the oldest beyond
        ``max_left`` (and their names)."""
        gone = [f for f in self._faces.values() if now - f.last_seen > self.retention_seconds]
        for face in gone:
            del self._faces[face.track_id]
            if face.frames >= self.min_frames:  # flicker that never got a tile is just dropped
                self._left[face.track_id] = _Retired(face.track_id, face.first_seen, face.last_seen, face.frames,
                                                     face.attention)
        forgotten = []
        while len(self._left) > self.max_left:
            forgotten.append(self._left.popitem(last=False)[0])
        if forgotten and any(str(tid) in self.names for tid in forgotten):
            self.names = {k: v for k, v in self.names.items() if int(k) not in forgotten}
        names = self.names  # rebuilt every push: a revived face leaves the list too (unchanged: nothing sent)
        self.left = [{"id": f.track_id, "name": names.get(str(f.track_id), ""),
                      "present_s": round(f.last_seen - f.first_seen), "left_s": round(f.last_seen - self._t0),
                      "left_at": self._clock(f.last_seen)}
                     for f in reversed(self._left.values())]

    def _clock(self, moment: float) -> str:
        """A ``time.monotonic()`` moment as this computer's clock time, ``"10:42"``."""
        return datetime.datetime.fromtimestamp(self._t0_clock + moment - self._t0).strftime("%H:%M")

    def _push(self, now: float) -> None:
        self._retire(now)
        faces, attention = [], []
        shown = sorted(self._shown(), key=lambda f: f.track_id)
        for f in shown:
            absent_s = now - f.last_seen
            present = absent_s <= 1.0
            rise = f.attention.rise(now)
            camera_off = not present and f.call_tile in self._empty_tiles
            faces.append({"id": f.track_id, "present": present, "absent_s": round(absent_s, 1),
                          "probs": [round(float(v), 3) for v in f.probs], "top": list(self._top(f)),
                          "spark": [[round(t - now, 1), round(v, 3)] for t, v in f.spark],
                          "age_ms": round(f.age_ms), "learning": round(f.attention.learning(), 2),
                          "rise": None if rise is None else round(rise, 3), "camera_off": camera_off})
            if absent_s > self.absent_seconds and not camera_off:  # a camera off is not a student away
                attention.append({"id": f.track_id, "reason": f"absent {absent_s:.0f} s"})
            elif present and rise is not None and rise >= self.negative_threshold:
                attention.append({"id": f.track_id, "reason": f"negative +{100 * rise:.0f} points over their "
                                                              f"resting face, {self.negative_seconds:.0f} s"})
        times = self._frame_times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        self.set_trait("fps", round(fps, 1))
        if self._level is not None:
            self.level = level_text(*self._level)
        self.faces = faces
        self.attention = attention
        self.camera_off = [{"tile": k} for k in sorted(self._empty_tiles - {f.call_tile for f in shown})]
        since_face = now - max(self._first_result, self._last_face)
        self.no_faces = now - self._last_result <= 2.0 and since_face >= NO_FACES_S

    @property
    def held(self) -> dict[str, int]:
        """What the view holds in kernel memory now (read-only, for leak checks): ``faces`` tracked (shown or not
        yet), ``left`` (retired faces remembered) and ``points`` (sparkline and attention-window points)."""
        with self._lock:
            return {"faces": len(self._faces), "left": len(self._left),
                    "points": sum(len(f.spark) + f.attention.points for f in self._faces.values())}

    def refresh(self, now: float | None = None) -> None:
        """Recompute tiles, attention and ``left`` now (absent timers keep running without new frames);
        ``now`` as in :meth:`update`."""
        with self._lock:
            self._push(time.monotonic() if now is None else now)

    def close(self) -> None:
        """Close the log (if on) and the widget. Rows the log could not write stay kept in memory (logged as a
        warning): :meth:`save_log` writes them elsewhere."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                if self._log.failure:
                    self._keep(self._log.unsaved())
                self._log = None
            kept = 0 if self._kept is None else self._kept.num_rows
        if kept:
            log.warning("class view closed with %d rows of its class log kept in memory (they could not be "
                        "written); view.save_log('other/folder/log.parquet') writes them", kept)
        super().close()


def __getattr__(name: str) -> Any:
    """``classroom``, ``Classroom`` and ``PreviewedVideo`` moved to :mod:`emowidgets.lesson` (deprecated here)."""
    if name in _MOVED:
        warnings.warn(f"emowidgets.classview.{name} is deprecated: it moved to emowidgets.lesson.{name}",
                      DeprecationWarning, stacklevel=2)
        from emowidgets import lesson  # the old name, kept one release

        return getattr(lesson, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

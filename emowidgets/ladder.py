"""The quality ladder: how much work each frame gets, stepped down under load and back up with headroom.

Each :class:`Level` sets what a frame costs: flip TTA on or off, how often the detector runs (faces are
followed in between, :mod:`emowidgets.motion`), how often a face may be re-classified
(:mod:`emowidgets.budget`) and how large the faces must stay in the frames the camera sends (the browser
shrinks frames to that). Nothing recompiles between levels: both TTA variants are compiled at warm-up.

:class:`QualityLadder` watches the processed rate against the camera's rate and the worker's busy time
per camera frame (its *load*: 1.0 means every frame interval is spent working). It steps down when fewer
than ``low`` of the camera's frames were processed *and* the worker was busy more than ``busy_down`` of
the time, for ``down_s``: a kernel that keeps up while frames are lost on the way (the browser's encoder,
the comm round trip) gains nothing from doing less. It steps up when the load stayed under ``busy_up``
for ``up_s``. A step up that is followed by a step down within ``probation_s`` doubles the wait before
the next try at that level (up to ``max_up_s``), so the ladder does not oscillate.
"""

from __future__ import annotations

import collections
import dataclasses

from emowidgets.errors import OptionsError


@dataclasses.dataclass(frozen=True)
class Level:
    """One rung of the ladder.

    Attributes:
        flip_tta: average in the mirrored crop (only where the classifier has it on).
        detect_hz: full detections per second (faces are followed between them).
        max_classify_hz: most re-classifications per second of one face (changed faces; still faces are
            refreshed at the budget's ``min_hz``).
        min_face_px: the smallest face's box side (pixels) the sent frames must keep.
    """

    flip_tta: bool
    detect_hz: float
    max_classify_hz: float
    min_face_px: int

    def describe(self, model: str, tta_available: bool) -> str:
        """A short text for the gauge and class view, e.g. ``"main · TTA off · detect 5/s"``."""
        parts = [model]
        if tta_available:
            parts.append(f"TTA {'on' if self.flip_tta else 'off'}")
        parts.append(f"detect {self.detect_hz:g}/s")
        return " · ".join(parts)


LEVELS = (
    Level(flip_tta=True, detect_hz=5, max_classify_hz=30, min_face_px=112),
    Level(flip_tta=False, detect_hz=5, max_classify_hz=15, min_face_px=96),
    Level(flip_tta=False, detect_hz=3, max_classify_hz=10, min_face_px=80),
    Level(flip_tta=False, detect_hz=2, max_classify_hz=5, min_face_px=64),
)
"""The default ladder (a webcam: one or a few large faces), best first."""

GALLERY_LEVELS = (
    Level(flip_tta=True, detect_hz=2, max_classify_hz=10, min_face_px=96),
    Level(flip_tta=False, detect_hz=2, max_classify_hz=10, min_face_px=80),
    Level(flip_tta=False, detect_hz=1, max_classify_hz=5, min_face_px=64),
)
"""The ladder of a video-call gallery: its tiled detection costs nine single passes, and a student who joins
can wait half a second to be found."""


@dataclasses.dataclass(frozen=True)
class LadderOptions:
    """When the ladder moves.

    Attributes:
        levels: the rungs, best first.
        low: processed / camera frames below this, with a load over ``busy_down``, for ``down_s`` seconds
            steps down.
        busy_down: see ``low``.
        busy_up: a load under this for ``up_s`` seconds steps up (the level above may cost twice as much).
        down_s, up_s: seconds a condition must hold (and the least time between two steps).
        probation_s: a step up followed by a step down within this doubles that level's ``up_s``.
        max_up_s: the longest wait before retrying a level.
        adaptive: move at all (False: stay at the first level).
    """

    levels: tuple[Level, ...] = LEVELS
    low: float = 0.85
    busy_down: float = 0.6
    busy_up: float = 0.3
    down_s: float = 1.5
    up_s: float = 3.0
    probation_s: float = 10.0
    max_up_s: float = 48.0
    adaptive: bool = True

    def __post_init__(self) -> None:
        if not self.levels or not 0 < self.low <= 1 or not 0 < self.busy_up < self.busy_down:
            raise OptionsError("levels must not be empty, 0 < low <= 1 and 0 < busy_up < busy_down; got "
                               f"{len(self.levels)} levels, {self.low}, {self.busy_up}, {self.busy_down}")
        if min(self.down_s, self.up_s, self.probation_s) <= 0 or self.max_up_s < self.up_s:
            raise OptionsError("down_s, up_s and probation_s must be > 0 and max_up_s >= up_s")


class QualityLadder:
    """Chooses the :class:`Level` for the next frame from what the last frames cost. Not thread-safe: one
    worker feeds it."""

    def __init__(self, options: LadderOptions | None = None) -> None:
        self.options = options or LadderOptions()
        self.index = 0
        """Current rung (0: best)."""
        self.steps = 0
        """Steps taken so far, either way."""
        self._done: collections.deque[float] = collections.deque()  # times of processed frames, last second
        self._busy_ms = 0.0
        self._since: tuple[int, float] | None = None  # start of the current down (< 0 side) or up (> 0 side) condition
        self._changed_at = -1e9
        self._raised_at = -1e9
        self._up_s = {i: self.options.up_s for i in range(len(self.options.levels))}

    @property
    def level(self) -> Level:
        """The rung the next frame is processed at."""
        return self.options.levels[self.index]

    def ratio(self, camera_fps: float) -> float:
        """Frames processed in the last second over the camera's rate (1.0 when the rate is unknown)."""
        return len(self._done) / camera_fps if camera_fps > 0 else 1.0

    def observe(self, now_s: float, busy_ms: float, camera_fps: float) -> bool:
        """Count one processed frame (done at ``now_s``, ``busy_ms`` of worker time) and maybe step; return
        whether the level changed. Without a camera rate (a file, single photos) the level holds."""
        o = self.options
        self._done.append(now_s)
        while self._done and now_s - self._done[0] > 1.0:
            self._done.popleft()
        self._busy_ms = busy_ms if not self._busy_ms else 0.8 * self._busy_ms + 0.2 * busy_ms
        if not o.adaptive or camera_fps <= 0 or now_s - self._changed_at < 1.0:
            return False
        ratio = self.ratio(camera_fps)
        load = self._busy_ms * camera_fps / 1000
        want = 1 if ratio < o.low and load > o.busy_down else -1 if load < o.busy_up else 0
        want = 0 if not 0 <= self.index + want < len(o.levels) else want
        if want == 0:
            self._since = None
            return False
        if self._since is None or self._since[0] != want:
            self._since = (want, now_s)
        wait = o.down_s if want > 0 else self._up_s[self.index - 1]
        if now_s - self._since[1] < wait:
            return False
        if want > 0 and now_s - self._raised_at < o.probation_s:  # the last step up did not hold
            self._up_s[self.index] = min(2 * self._up_s[self.index], o.max_up_s)
        if want < 0:
            self._raised_at = now_s
        self.index += want
        self.steps += 1
        self._changed_at = now_s
        self._since = None
        self._done.clear()  # judge the new level on its own frames
        return True

""""Needs attention", measured against each student's own resting face.

A model trained on strangers reads some people's resting face as a little sad or angry, all lesson long;
a fixed threshold on the negative score (angry + disgust + fear + sad) then flags them for nothing. So a
student is flagged only when their negative score, averaged over ``window_s``, rises ``margin`` above
their own *resting level*: the median negative score of their first ``resting_s`` seconds in view, leaving
out frames whose top class is happy or surprise (a smile is not rest). Until that level is learned the
student is shown as "learning" and never flagged.

The defaults come from ``benchmarks/attention_people.py`` (docs/classroom.md, "Needs attention"): on
people.npz's calm faces this rule flags far fewer than a fixed threshold at the same hit rate on clearly
negative faces. The class view's tiles and list and the after-class report all use :class:`FaceAttention`.
Numpy only (the report imports it).
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from emowidgets.vocab import EMOTIONS, NEGATIVE

_NEG = np.isin(np.array(EMOTIONS), NEGATIVE)
_NOT_REST = np.isin(np.array(EMOTIONS), ("happy", "surprise"))


def negative_scores(probs: np.ndarray) -> np.ndarray:
    """Angry + disgust + fear + sad of each row of ``(N, 7)`` base scores."""
    return np.asarray(probs, np.float64)[..., _NEG].sum(-1)


def resting_level(probs: np.ndarray) -> float:
    """A face's resting negative score from its ``(N, 7)`` base scores: the median over frames whose top class
    is not happy or surprise (over all frames if every one is)."""
    probs = np.asarray(probs, np.float64)
    rest = probs[~_NOT_REST[probs.argmax(-1)]]
    return float(np.median(negative_scores(rest if len(rest) else probs)))


@dataclasses.dataclass(frozen=True)
class AttentionRule:
    """When a student needs attention.

    Attributes:
        margin: how far (0..1) the mean negative score must rise above the student's resting level.
        window_s: seconds the negative score is averaged over; at least half of it must be observed.
        resting_s: seconds in view the resting level is learned from.
    """

    margin: float = 0.25
    window_s: float = 20.0
    resting_s: float = 30.0

    def describe(self) -> str:
        """The rule in one line of plain words, as the page and the report show it."""
        return (f"needs attention: looks negative (angry, disgust, fear and sad added up) {100 * self.margin:.0f} "
                f"points more than their own resting face, on average over {self.window_s:.0f} s")


class FaceAttention:
    """One student's resting level and recent negative scores, fed with each of their results in time order.

    Args:
        rule: the thresholds.
    """

    def __init__(self, rule: AttentionRule) -> None:
        self.rule = rule
        self.resting: float | None = None
        """The learned resting level (None while learning)."""
        self._learned_s = 0.0
        self._learning: list[np.ndarray] = []
        self._window: collections.deque[tuple[float, float]] = collections.deque()
        self._last: float | None = None

    def observe(self, now: float, probs: np.ndarray) -> None:
        """Fold in one result's 7 base scores at time ``now`` (seconds)."""
        if self.resting is None:
            if self._last is not None:
                self._learned_s += min(now - self._last, 1.0)  # a gap (the student away) does not count
            if not self._learning or self._learned_s >= len(self._learning) * 0.5:  # ~2 samples a second
                self._learning.append(np.asarray(probs, np.float64))
            if self._learned_s >= self.rule.resting_s:
                self.resting = resting_level(np.stack(self._learning))
                self._learning = []
        self._last = now
        self._window.append((now, float(negative_scores(probs))))
        while now - self._window[0][0] > self.rule.window_s:
            self._window.popleft()

    @property
    def points(self) -> int:
        """Scores held for the rolling window now (read-only; bounded by the window, for memory checks)."""
        return len(self._window)

    def learning(self) -> float:
        """0..1: how much of the resting level is learned (1: learned)."""
        return 1.0 if self.resting is not None else min(self._learned_s / self.rule.resting_s, 1.0)

    def rise(self, now: float) -> float | None:
        """Mean negative score over the window minus the resting level; None while learning or when less than
        half the window is observed up to ``now``."""
        if self.resting is None or not self._window or now - self._window[0][0] < self.rule.window_s / 2:
            return None
        recent = [v for t, v in self._window if now - t <= self.rule.window_s]
        return float(np.mean(recent)) - self.resting if recent else None

    def flagged(self, now: float) -> bool:
        """Whether the student needs attention at ``now``."""
        rise = self.rise(now)
        return rise is not None and rise >= self.rule.margin


def flag_series(times_s: np.ndarray, probs: np.ndarray, rule: AttentionRule) -> np.ndarray:
    """Per row of one student's log (times in seconds, increasing; ``(N, 7)`` base scores): flagged or not.

    The same answers as feeding :class:`FaceAttention` row by row (the class view's rule), in numpy: the
    report replays lessons of a million rows."""
    t = np.asarray(times_s, np.float64)
    probs = np.asarray(probs, np.float64)
    out = np.zeros(len(t), bool)
    if not len(t):
        return out
    learned = np.concatenate([[0.0], np.cumsum(np.minimum(np.diff(t), 1.0))])  # seconds in view, gaps capped
    done = int(np.searchsorted(learned, rule.resting_s, side="left"))  # the row the resting level is learned at
    if done == len(t):
        return out
    # learning samples: the first row, then the c-th at the first later row with learned >= c / 2 (one a row)
    c = np.arange(done + 1)
    first = np.searchsorted(learned, c * 0.5, side="left")
    samples = np.maximum.accumulate(first - c) + c
    resting = resting_level(probs[samples[samples <= done]])
    neg = negative_scores(probs)
    lo = np.searchsorted(t, t - rule.window_s, side="left")  # the window's oldest row, as FaceAttention keeps it
    while np.any(move := (lo > 0) & (t - t[np.maximum(lo - 1, 0)] <= rule.window_s)):
        lo[move] -= 1
    while np.any(move := t - t[lo] > rule.window_s):
        lo[move] += 1
    total = np.concatenate([[0.0], np.cumsum(neg)])
    idx = np.arange(len(t))
    mean = (total[idx + 1] - total[lo]) / (idx + 1 - lo)
    return (idx >= done) & (t - t[lo] >= rule.window_s / 2) & (mean - resting >= rule.margin)

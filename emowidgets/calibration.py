"""Calibration widget: capture a few shots per label from the live camera, fit an adapter, apply it.

An ipywidgets composition next to a :class:`~emowidgets.widgets.CameraWidget`: an editable label
list, a Capture and a 1-second Burst button per label with shot counters, Train (progress, loss
curve, whether it works on examples kept aside), Apply and Reset. Whose faces are captured and where Apply puts the
adapter is a :class:`ShotSource`: by default the largest face and ``pipeline.head`` (:func:`largest_face`);
the class view passes one for a single student or for the whole room. Shots are kept as backbone
embeddings in kernel memory only; no pixels are ever put in widget state, so there are no thumbnails
and a saved notebook holds no face. A capture is refused when the face is not visible.

Stable CSS classes for tests and styling: ``emow-calib`` (the panel), ``emow-calib-labels`` (the label field),
``emow-calib-row`` / ``-name`` / ``-capture`` / ``-burst`` / ``-count`` (one row per label), ``emow-calib-train``,
``-apply``, ``-reset`` (buttons), ``emow-calib-progress``, ``-accuracy``, ``-curve``, ``-status`` and
``-title`` (when a title is given).
"""

from __future__ import annotations

import dataclasses
import html
import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np

from emowidgets.adapter import Adapter, BaseHead
from emowidgets.adapter_fit import AdapterOptions, FitReport, fit_adapter
from emowidgets.boxes import largest_face as largest_box
from emowidgets.errors import AdapterError, EmowidgetsError, NoFaceError
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import FrameResult


@dataclasses.dataclass(frozen=True)
class ShotSource:
    """Whose faces a :class:`CalibrationWidget` takes as shots, and where its adapter goes.

    Attributes:
        pick: indices of the faces of a frame to keep as shots; empty when the person is not in view.
        install: puts a fitted adapter to use; ``None`` undoes it (Reset).
        name: who is calibrated, for messages (empty: one unnamed face, "no face visible").
    """

    pick: Callable[[FrameResult], np.ndarray]
    install: Callable[[Adapter | None], None]
    name: str = ""


def _largest(result: FrameResult) -> np.ndarray:
    i = largest_box(result.boxes)
    return np.zeros(0, int) if i is None else np.array([i])


def largest_face(pipeline: Pipeline) -> ShotSource:
    """Shots of the largest face in view; Apply sets ``pipeline.head`` (one person at a camera)."""

    def install(adapter: Adapter | None) -> None:
        pipeline.head = adapter

    return ShotSource(_largest, install)


class CalibrationWidget(w.VBox):
    """Few-shot calibration panel for a running :class:`Pipeline`.

    Args:
        pipeline: the live pipeline; its results feed the captures.
        labels: starting label list (2..12 names, base emotions and/or new ones).
        options: adapter fitting settings.
        burst_seconds: how long a Burst capture collects frames.
        source: whose faces are shots and what Apply does; default :func:`largest_face`.
        title: a heading shown above the label list (e.g. who is being calibrated).
        listen: deprecated (every source's results reach the pipeline's listeners, so the panel always
            listens); ``False`` still leaves the feeding of :meth:`on_result` to the caller.
    """

    def __init__(self, pipeline: Pipeline, labels: tuple[str, ...] = ("happy", "neutral", "confused"),
                 options: AdapterOptions | None = None, burst_seconds: float = 1.0, *,
                 source: ShotSource | None = None, title: str = "", listen: bool | None = None, **kwargs: Any) -> None:
        if listen is not None:
            warnings.warn("CalibrationWidget(listen=...) is deprecated: the panel listens to the pipeline, which "
                          "delivers every source's results (kernel sources too)", DeprecationWarning, stacklevel=2)
        listen = listen is not False
        self.pipeline = pipeline
        self.source = source or largest_face(pipeline)
        self._listening = listen
        self.options = options or AdapterOptions()
        self.burst_seconds = burst_seconds
        self.shots: dict[str, list[np.ndarray]] = {}
        self.adapter: Adapter | None = None
        self._latest: FrameResult | None = None
        self._burst: tuple[str, float] | None = None
        self.shot_groups: dict[str, list[int]] = {}
        """Capture id of each shot (a Burst's frames share one), so near-duplicates are held back together."""
        self._capture_id = 0
        self._lock = threading.Lock()
        self._base = BaseHead.from_classifier(pipeline.classifier)
        self.label_text = w.Text(", ".join(labels), description="labels", continuous_update=False)
        self.rows = w.VBox()
        self.status = w.HTML("")
        self.progress = w.IntProgress(0, min=0, max=self.options.max_steps, description="training")
        self.accuracy = w.HTML("")
        self.curve = w.HTML("")
        self.train_button = w.Button(description="Train", icon="play")
        self.apply_button = w.Button(description="Apply", disabled=True)
        self.reset_button = w.Button(description="Reset")
        for widget, css in [(self.label_text, "labels"), (self.rows, "rows"), (self.status, "status"),
                            (self.progress, "progress"), (self.accuracy, "accuracy"), (self.curve, "curve"),
                            (self.train_button, "train"), (self.apply_button, "apply"),
                            (self.reset_button, "reset")]:
            widget.add_class(f"emow-calib-{css}")
        self.label_text.observe(lambda _: self._rebuild(), "value")
        self.train_button.on_click(lambda _: self._guard(self.train))
        self.apply_button.on_click(lambda _: self._guard(self.apply))
        self.reset_button.on_click(lambda _: self.reset())
        buttons = w.HBox([self.train_button, self.apply_button, self.reset_button])
        heading = []
        if title:
            heading = [w.HTML(f"<b>{html.escape(title)}</b>")]
            heading[0].add_class("emow-calib-title")
        super().__init__([*heading, self.label_text, self.rows, buttons, self.progress, self.accuracy,
                          self.curve, self.status], **kwargs)
        self.add_class("emow-calib")
        self._rebuild()
        if listen:  # a panel built again on this pipeline (a re-run cell) replaces this one's listener
            pipeline.add_listener(self.on_result, slot="calibration")

    @property
    def labels(self) -> tuple[str, ...]:
        """The label list as typed (comma separated, blanks dropped)."""
        return tuple(dict.fromkeys(s.strip() for s in self.label_text.value.split(",") if s.strip()))

    def _rebuild(self) -> None:
        self.shots = {name: self.shots.get(name, []) for name in self.labels}
        self.shot_groups = {name: self.shot_groups.get(name, []) for name in self.labels}
        rows = []
        for name in self.labels:
            capture, burst = w.Button(description="Capture"), w.Button(description=f"Burst {self.burst_seconds:g}s")
            capture.on_click(lambda _, n=name: self._guard(lambda: self.capture(n)))
            burst.on_click(lambda _, n=name: self._guard(lambda: self.start_burst(n)))
            capture.add_class("emow-calib-capture")
            burst.add_class("emow-calib-burst")
            label, count = w.Label(name, layout={"width": "120px"}), w.Label(f"{len(self.shots[name])} shots")
            label.add_class("emow-calib-name")
            count.add_class("emow-calib-count")
            row = w.HBox([label, capture, burst, count])
            row.add_class("emow-calib-row")
            rows.append(row)
        self.rows.children = rows

    def _guard(self, fn: Any) -> None:
        """Run a button action; show its error in the status line instead of raising into the frontend."""
        try:
            fn()
        except EmowidgetsError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"

    def on_result(self, result: FrameResult) -> None:
        """Pipeline listener: remember the latest frame; during a burst, keep the source's faces of it."""
        with self._lock:
            self._latest = result
            burst = self._burst
        if burst is None:
            return
        name, until = burst
        if time.monotonic() > until:
            with self._lock:
                self._burst = None
            self._refresh_counts()
        elif len(result.boxes):
            self._add(name, result)

    def _add(self, name: str, result: FrameResult) -> None:
        picked = self.source.pick(result)
        with self._lock:
            self.shots[name].extend(np.array(result.embeddings[i]) for i in picked)
            self.shot_groups[name].extend([self._capture_id] * len(picked))

    def _refused(self, what: str) -> NoFaceError:
        who = f"{self.source.name} is not in view" if self.source.name else "no face visible"
        return NoFaceError(f"{who}: {what} refused; try again when the face is in view")

    def _refresh_counts(self) -> None:
        for row, name in zip(self.rows.children, self.labels, strict=False):
            row.children[-1].value = f"{len(self.shots.get(name, []))} shots"

    def capture(self, name: str) -> None:
        """Take the source's faces of the latest frame (by default the largest) as shots of ``name``.

        Raises:
            NoFaceError: the source's face is not in the latest frame.
        """
        with self._lock:
            result = self._latest
        if result is None or not len(self.source.pick(result)):
            raise self._refused("capture")
        with self._lock:
            self._capture_id += 1
        self._add(name, result)
        self._refresh_counts()
        self.status.value = f"captured {html.escape(name)}"

    def start_burst(self, name: str) -> None:
        """Collect the source's faces of every frame for ``burst_seconds`` as shots of ``name``."""
        with self._lock:
            latest = self._latest
        if latest is None or not len(self.source.pick(latest)):
            raise self._refused("burst")
        with self._lock:
            self._capture_id += 1
            self._burst = (name, time.monotonic() + self.burst_seconds)
        self.status.value = f"capturing {html.escape(name)} for {self.burst_seconds:g} s"

    def train(self) -> None:
        """Fit an adapter on the shots; shows progress, the loss curve and whether it works on examples it was
        not trained on (a fit no better than guessing is called not reliable, and Apply becomes "Apply anyway")."""
        names = self.labels
        with self._lock:
            pairs = [(emb, k, g) for k, name in enumerate(names)
                     for emb, g in zip(self.shots.get(name, []), self.shot_groups.get(name, []), strict=True)]
        if not pairs:
            raise AdapterError("no shots yet: capture a few per label first")
        emb = np.stack([p[0] for p in pairs])
        labels = np.array([p[1] for p in pairs])
        groups = np.array([p[2] for p in pairs])
        self.progress.value = 0

        def on_step(step: int, _loss: float) -> None:
            self.progress.value = step + 1

        self.adapter, report = fit_adapter(emb, labels, names, self.options, base=self._base, groups=groups,
                                           on_step=on_step)
        self.progress.value = self.progress.max
        self.curve.value = loss_svg(report.losses)
        verdict, reliable = verdict_text(report, len({int(k) for k in labels}))
        self.accuracy.value = verdict
        self.apply_button.disabled = False
        self.apply_button.description = "Apply" if reliable else "Apply anyway"
        self.status.value = ("trained: press Apply to use it live" if reliable else
                             "trained, but not reliable: capture more, or different, examples and train again")

    def apply(self) -> None:
        """Put the fitted adapter to use (by default for every live face: ``pipeline.head``)."""
        if self.adapter is None:
            raise AdapterError("nothing to apply: press Train first")
        self.source.install(self.adapter)
        self.status.value = f"applied: {html.escape(', '.join(self.adapter.labels))}"

    def reset(self) -> None:
        """Undo Apply (back to the base model), forget shots and the adapter."""
        self.source.install(None)
        self.adapter = None
        with self._lock:
            self.shots = {name: [] for name in self.labels}
            self.shot_groups = {name: [] for name in self.labels}
            self._burst = None
        self.apply_button.disabled = True
        self.apply_button.description = "Apply"
        self.accuracy.value = ""
        self.curve.value = ""
        self._refresh_counts()
        self.status.value = (f"reset: {html.escape(self.source.name)} has no adapter of their own now"
                             if self.source.name else "reset to the base model")

    def close(self) -> None:
        """Stop listening to the pipeline and close the panel."""
        if self._listening:
            self.pipeline.remove_listener(self.on_result)
        super().close()


def verdict_text(report: FitReport, classes: int, level: float = 0.05) -> tuple[str, bool]:
    """The fit's result in a teacher's words (HTML; the technical detail one click away) and whether it is
    reliable: its accuracy on the examples it was not trained on is above guessing (one-sided binomial test at
    ``level`` against ``1 / classes``)."""
    shots = sum(w for p, w in report.weights.items() if p <= 1)  # weak pulls: the examples lead
    general = report.weights.get(math.inf, 0.0)  # no training: the general model
    detail = (f"<details><summary>details</summary>trust in your examples {shots:.0%}, in the general model "
              f"{general:.0%}, in between {max(0.0, 1 - shots - general):.0%}; {report.steps} training steps in "
              f"{report.seconds:.2f} s</details>")
    if report.heldout_accuracy is None or report.heldout_n == 0:
        return ("Result: could not be checked — capture each label at least twice (two separate captures), so "
                "that some examples can be kept aside to test it." + detail), False
    from scipy.stats import binomtest  # only here: scipy.stats takes a while to import

    n = report.heldout_n
    k = round(report.heldout_accuracy * n)
    reliable = classes > 1 and binomtest(k, n, 1 / classes, alternative="greater").pvalue < level
    tested = f"it recognised {k} of {n} examples it had not seen (guessing would get about {n / classes:.0f})"
    if reliable:
        return f"Result: works — {tested}." + detail, True
    return f"Result: not reliable — capture more, or different, examples: {tested}." + detail, False


def loss_svg(losses: list[float], width: int = 320, height: int = 90) -> str:
    """The loss curve as a small inline SVG (a plain HTML trait: no Output widget, no image, no matplotlib)."""
    if not losses:
        return ""
    vals = np.asarray(losses, float)
    lo, hi = float(vals.min()), float(vals.max())
    pad, span = 6, (hi - lo) or 1.0
    xs = np.linspace(pad, width - pad, len(vals)) if len(vals) > 1 else np.array([width / 2])
    ys = height - pad - (vals - lo) / span * (height - 2 * pad)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return (f'<svg class="emow-calib-loss" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="training loss"><rect width="{width}" height="{height}" fill="#fafafa" '
            f'stroke="#ddd"/><polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
            f'<text x="{width - pad}" y="14" text-anchor="end" font-size="11" fill="#555">loss {vals[0]:.3g} '
            f'&#8594; {vals[-1]:.3g}, {len(vals)} steps</text></svg>')

"""Jupyter widgets: :class:`CameraWidget` streams frames to the kernel, :class:`EmotionGauge` shows scores.

Frames travel browser -> kernel as JPEG buffers of custom comm messages (``{"type": "frame", "seq",
"timestamp_ms", "width", "height", "scale", "camera_fps"}`` + one buffer; ``width``/``height`` are the sent
size, ``scale`` that size over the video's own, ``camera_fps`` the rate the page's camera delivered over the
last second). The browser keeps at most ``max_in_flight`` frames un-acked and skips camera frames while that
many are out, so frames are dropped in the browser, never queued. With a pipeline, a result ``{"type":
"result", "seq", "faces", "ms", "level", "scale"}`` acks every frame up to its ``seq`` and a frame the
pipeline drops or cannot decode is acked when it does, so the browser never encodes frames the kernel has no
time for; with a plain ``on_frame`` callback frames are acked on receipt. No pixels are ever stored in a
trait: a saved notebook holds no face.

In a class view (``label_ids``) each box is labelled with its student's name from ``names`` (track id as text ->
name; text only), or ``#id``, in that face's colour (:func:`track_color`, the class view's tile has the same), and
hovering a box highlights the class view's tile of that face (and the reverse; both widgets share ``link``).
A :class:`FramePreview` shows frames read in the kernel (a recording) the same way: each scaled down and sent as
a JPEG custom message (``{"type": "preview", "seq"}`` + one buffer) next to its result; never a trait.

Frames are sized to need (``resize``): a result's ``scale`` says how much smaller the next frames could be
and still keep every face sharp; the browser sends the smallest of the steps 1, 3/4, 1/2, 3/8, 1/4 (not below
``min_frame_scale``) that does, at once when that is bigger; smaller only after a second of results asking for
it with 10 % to spare (so a face near a step does not make frames flip between two sizes). JPEGs are encoded in
a Worker (``OffscreenCanvas``) off the page's main thread where the browser can.

Where a frontend's widget manager drops binary buffers (reported for Colab's), the first frame arrives without
one; the kernel then sets ``transport`` to ``"text"`` and the browser sends each JPEG base64-encoded in the
message instead (a third larger; still never in a trait).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import simplejpeg
import traitlets
from ipywebrtc import MediaStream
from ipywidgets import widget_serialization
from PIL import Image

from emowidgets.boxes import largest_face
from emowidgets.entry import check_source as check_entry_source
from emowidgets.errors import OptionsError
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import EMOTIONS, FrameResult

STATIC = Path(__file__).parent / "static"

FrameCallback = Callable[[bytes | memoryview, int, int], None]
"""``fn(jpeg, seq, timestamp_ms)``; called on the kernel's shell thread for each received frame."""

STALE_MS = 500
"""A face's scores older than this (ms since it was last classified) are shown with their age."""

STATUSES = ("waiting for permission", "waiting for stream", "permission denied", "no camera", "camera unavailable",
            "stream ended", "share cancelled", "running", "error", "preview")

TRACK_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f")
"""Colours of faces by track id: a face's box on the preview and its class-view tile share one."""


def track_color(track_id: int) -> str:
    """The colour of face ``track_id`` (the pages compute the same: ``colors[id mod len]``)."""
    return TRACK_COLORS[track_id % len(TRACK_COLORS)]

log = logging.getLogger("emowidgets.widgets")


SOURCES = ("camera", "screen")

BROWSER_OPTIONS = ("width", "height", "quality", "max_in_flight", "transport", "mirror", "resize", "min_frame_scale")
"""The :class:`CameraWidget` traits ``live()`` and ``classroom()`` pass on from ``**camera_options``."""


def check_source(source: object) -> None:
    """Refuse a source that is not ``None``, ``"camera"``, ``"screen"`` or an ipywebrtc ``MediaStream``, with the
    entry points' message (:func:`emowidgets.entry.check_source`).

    Raises:
        OptionsError: naming the allowed forms.
    """
    if check_entry_source(source, SOURCES, default=True) != source:  # "Camera": live() lower-cases it, not we
        raise OptionsError(f"a CameraWidget's source names are lower case: {str(source).lower()!r}, not {source!r}")


def check_camera_settings(settings: dict[str, Any]) -> None:
    """Check :class:`CameraWidget` trait values without making a widget, so the entry points refuse a bad one
    before they load a model or start a thread.

    Raises:
        OptionsError: a name that is not a camera trait, or a value its trait refuses (the trait's reason).
    """
    traits = CameraWidget.class_traits()
    for name, value in settings.items():
        if name not in traits:
            raise OptionsError(f"a camera has no setting {name!r}")
        try:
            traits[name].validate(None, value)
        except traitlets.TraitError as exc:
            raise OptionsError(f"bad camera setting {name}={value!r}: "
                               f"{str(exc).replace(' of a NoneType instance', '')}") from exc


class CameraWidget(anywidget.AnyWidget):
    """Live camera, screen or ipywebrtc stream preview that sends JPEG frames to the kernel.

    Args:
        source: ``None``/``"camera"`` (``getUserMedia``), ``"screen"`` (``getDisplayMedia``) or an ipywebrtc
            ``MediaStream`` widget (``CameraStream``, ``VideoStream``, ``WidgetStream``), which this widget
            reads but never stops.
        pipeline: if given, frames go to ``pipeline.submit`` and its results are drawn over the preview.
        on_frame: frame callback used instead of ``pipeline.submit``.
        **kwargs: trait values (``width``, ``height``, ``quality``, ``max_in_flight``).

    One camera per pipeline: a camera built on a pipeline that has one takes its place (the old one's frames
    are acked and ignored), so re-running a notebook cell does not pile up listeners.

    Raises:
        OptionsError: a source or setting that is not allowed.
    """

    _esm = STATIC / "camera.js"
    _css = STATIC / "camera.css"

    source = traitlets.Enum(("camera", "screen", "stream", "frames"), "camera",
                            help="frames: no stream, frames come from the kernel (FramePreview)").tag(sync=True)
    stream = traitlets.Instance(MediaStream, allow_none=True).tag(sync=True, **widget_serialization)
    width = traitlets.Int(0, help="requested width; 0: 640 (camera), 1280 (screen)").tag(sync=True)
    height = traitlets.Int(0, help="requested height; 0: 480 (camera), 720 (screen)").tag(sync=True)
    quality = traitlets.Float(0.8, min=0.05, max=1.0, help="JPEG quality").tag(sync=True)
    max_in_flight = traitlets.Int(3, min=1, help="frames sent but not yet acked").tag(sync=True)
    transport = traitlets.Enum(("binary", "text"), "binary",
                               help="frames as binary buffers, or base64 text where buffers are lost").tag(sync=True)
    mirror = traitlets.Bool(True, help="mirror the camera preview (frames go unmirrored)").tag(sync=True)
    status = traitlets.Unicode("waiting for permission", help=f"one of {STATUSES}").tag(sync=True)
    error = traitlets.Unicode("", help="browser error text behind an error status").tag(sync=True)
    fps = traitlets.Float(0.0, help="frames sent per second (browser clock)").tag(sync=True)
    frames_sent = traitlets.Int(0).tag(sync=True)
    resize = traitlets.Bool(True, help="send frames only as large as the faces need (False: always the video's "
                            "own size)").tag(sync=True)
    min_frame_scale = traitlets.Float(0.25, min=0.05, max=1.0, help="smallest frame scale sent, of the video's "
                                      "own size").tag(sync=True)
    frame_scale = traitlets.Float(1.0, help="scale of the last frame sent, of the video's own size (set by the "
                                  "browser, about once a second)").tag(sync=True)
    frame_size = traitlets.List(traitlets.Int(), [0, 0], help="[width, height] of the last frame sent (set by the "
                                "browser)").tag(sync=True)
    label_ids = traitlets.Bool(False, help="label each box with its face's name or #id, in its track colour"
                               ).tag(sync=True)
    names = traitlets.Dict(help="track id (as text) -> name (text only), shown on the boxes").tag(sync=True)
    track_colors = traitlets.List(traitlets.Unicode(), list(TRACK_COLORS)).tag(sync=True)
    link = traitlets.Unicode("", help="hover events are shared with the class view of the same link").tag(sync=True)
    frames_received = traitlets.Int(0, help="frames that reached the kernel (kernel-only, not synced)")
    last_result = traitlets.Dict(help="latest result message: boxes, labels, no pixels (kernel-only)")

    def __init__(self, source: str | MediaStream | None = None, *, pipeline: Pipeline | None = None,
                 on_frame: FrameCallback | None = None, **kwargs: Any) -> None:
        check_source(source)
        if isinstance(source, MediaStream):
            kwargs.update(source="stream", stream=source)
        elif source is not None:
            kwargs["source"] = source
        try:
            super().__init__(**kwargs)
        except traitlets.TraitError as exc:
            raise OptionsError(f"bad CameraWidget setting: {exc}") from exc
        self._pipeline = pipeline
        self._on_frame = on_frame or (pipeline.submit if pipeline is not None else None)
        self._lock = threading.Lock()
        if pipeline is not None:  # one camera per pipeline: a new one (a re-run cell) takes the old one's place
            pipeline.add_listener(self.show_result, slot="camera")
            pipeline.add_skip_listener(self._ack, slot="camera")
        self.on_msg(self._on_custom_msg)

    def _on_custom_msg(self, _widget: object, content: dict[str, Any], buffers: list[memoryview]) -> None:
        if not isinstance(content, dict) or content.get("type") != "frame":
            return
        seq = int(content.get("seq", 0))
        with self._lock:
            self.frames_received += 1
        camera_fps = content.get("camera_fps")
        if self._pipeline is not None and isinstance(camera_fps, int | float) and camera_fps > 0:
            self._pipeline.set_camera_rate(float(camera_fps))
        if self._pipeline is not None and not self._pipeline.has_listener(self.show_result):
            self._ack(seq)  # replaced by a newer camera on this pipeline, or the pipeline is closed
            return
        data = buffers[0] if buffers else self._text_frame(content)
        if data is None:
            self._ack(seq)
            return
        try:
            if self._on_frame is not None:
                self._on_frame(data, seq, int(content.get("timestamp_ms", 0)))
                if self._pipeline is not None and self._on_frame == self._pipeline.submit:
                    return  # acked by its result, or by the pipeline's skip notice
        except Exception:
            log.exception("frame callback failed")
        self._ack(seq)

    def _text_frame(self, content: dict[str, Any]) -> bytes | None:
        """The JPEG of a text-transport frame; ``None`` (and text transport from now on) for a binary frame
        whose buffer was lost on the way."""
        if "jpeg" not in content:
            if self.transport == "binary":
                log.info("a frame arrived without its binary buffer: switching to text transport")
                self.transport = "text"
            return None
        try:
            return base64.b64decode(str(content["jpeg"]), validate=True)
        except binascii.Error:
            return b""  # a bad frame: the pipeline counts and skips it

    def _ack(self, seq: int) -> None:
        self.send({"type": "ack", "seq": seq})

    def show_result(self, result: FrameResult) -> None:
        """Draw ``result``'s boxes and labels over the preview; safe to call from any thread."""
        message = result.to_message()
        self.send({"type": "result", **message})
        self.last_result = message

    def close(self) -> None:
        """Stop receiving results and close the widget (the browser stops its own tracks)."""
        if self._pipeline is not None:
            self._pipeline.remove_listener(self.show_result)
            self._pipeline.remove_skip_listener(self._ack)
        super().close()


class FramePreview(CameraWidget):
    """The page's picture of frames read in the kernel (a recording played by a
    :class:`~emowidgets.sources.FrameSource`), with the same boxes as a camera's preview.

    Call :meth:`hold` with each frame before it is processed, and :meth:`show_result` with its result: the
    held frame goes, scaled to at most ``preview_width`` px wide, as a JPEG custom message at most
    ``max_fps`` times a second, then the result. The JPEG is never a trait: a saved notebook holds no face.
    """

    source = traitlets.Enum(("frames",), "frames", help="no stream: the frames come from the kernel").tag(sync=True)
    status = traitlets.Unicode("preview").tag(sync=True)
    preview_width = traitlets.Int(320, min=16, help="widest preview frame sent, in pixels")
    max_fps = traitlets.Float(12.0, min=0.1, help="most preview frames sent per second")
    quality = traitlets.Float(0.7, min=0.05, max=1.0, help="JPEG quality").tag(sync=True)
    previews_sent = traitlets.Int(0, help="preview frames sent (kernel-only)")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._held: np.ndarray | None = None
        self._last_sent = -1e9

    def hold(self, rgb: np.ndarray) -> None:
        """Keep ``rgb`` ``(H, W, 3)`` uint8, the frame whose result comes next (the source's thread)."""
        self._held = rgb

    def show_result(self, result: FrameResult) -> None:
        """Send the held frame (scaled down, when the rate allows) and then ``result``'s boxes."""
        rgb, self._held = self._held, None
        now = time.monotonic()
        if rgb is not None and now - self._last_sent >= 1.0 / self.max_fps:
            self._last_sent = now
            self.send({"type": "preview", "seq": result.seq}, buffers=[self._jpeg(rgb)])
            self.previews_sent += 1
        super().show_result(result)

    def _jpeg(self, rgb: np.ndarray) -> bytes:
        height, width = rgb.shape[:2]
        if width > self.preview_width:
            size = (self.preview_width, max(1, round(height * self.preview_width / width)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=round(100 * self.quality),
                                            colorspace="RGB"))


LEVEL_LEGEND = ("What the widget does to keep up with the camera: the model (main: more accurate; fast: for many "
                "faces) · TTA on: each face is also read mirrored (more accurate, twice the work; off when the "
                "computer is busy) · detect N/s: faces are searched N times a second and followed in between · "
                "W\N{MULTIPLICATION SIGN}H: the size of the frames the browser sends")
"""The level line explained in words (the gauge's and the class view's tooltip)."""


def level_text(level: str, width: int, height: int) -> str:
    """What the pipeline gave up, in one line: ``"main · TTA off · detect 5/s · 320x240"`` (a result's quality level
    and its frame size with a multiplication sign; without the level where it has none). The processed rate is
    shown once, beside it, not in this line."""
    return " · ".join([*([level] if level else []), f"{width}\N{MULTIPLICATION SIGN}{height}"])


def shown_text(aggregate: str, faces: int, picked: bool = False, learning: float = 1.0) -> str:
    """Whose scores the bars show when there are several faces, ``picked``: a face the teacher clicked; and,
    while auto-calibration learns that face's resting expression (``learning`` < 1), how far it is. ``""`` for
    one face (or none) whose resting expression is known."""
    which = ""
    if faces >= 2 and picked:
        which = f"bars: the face you clicked, of {faces} (click it again for the {aggregate})"
    elif faces >= 2:
        which = (f"bars: the mean of {faces} faces" if aggregate == "mean" else f"bars: the largest of {faces} faces"
                 ) + " (click a box to follow one)"
    if faces and learning < 1.0:
        return " · ".join(filter(None, [which, f"learning this face's resting expression… {100 * learning:.0f} %"]))
    return which


class EmotionGauge(anywidget.AnyWidget):
    """Bars of class probabilities, the dominant class, processed fps and face count.

    ``aggregate`` picks what the bars show when several faces are found: ``"largest"`` (default; the face
    nearest the camera) or ``"mean"`` (average over faces), unless a box clicked on the preview picked one
    (``face``); ``shown`` says which in words. Trait updates are
    throttled to ``max_rate`` per second; the fps counts every result. ``level`` says what the pipeline gave up
    to keep up (quality level, frame size; ``level_help`` explains it, as the line's tooltip); ``age`` how old
    the shown scores are (the oldest face's, for ``"mean"``), shown from :data:`STALE_MS` on. ``status`` is a
    line for the teacher about the view itself (``"starting: ..."``, ``"stopped"``; empty while all is well),
    ``notice`` a warning (another live view on this computer).
    """

    _esm = STATIC / "gauge.js"
    _css = STATIC / "gauge.css"

    labels = traitlets.List(traitlets.Unicode(), list(EMOTIONS)).tag(sync=True)
    values = traitlets.List(traitlets.Float(), [0.0] * len(EMOTIONS)).tag(sync=True)
    dominant = traitlets.Unicode("").tag(sync=True)
    fps = traitlets.Float(0.0, help="processed frames per second over the last second").tag(sync=True)
    faces = traitlets.Int(0).tag(sync=True)
    aggregate = traitlets.Enum(("largest", "mean"), "largest").tag(sync=True)
    level = traitlets.Unicode("", help="quality level · frame size of the latest result").tag(sync=True)
    age = traitlets.Int(0, help="ms since the shown face was last classified").tag(sync=True)
    face = traitlets.Int(None, allow_none=True, help="track id of the face whose bars are shown (a box clicked on "
                         "the preview of the same `link`); None, or a face gone: the `aggregate`").tag(sync=True)
    link = traitlets.Unicode("", help="box clicks are shared with the camera widget of the same link"
                             ).tag(sync=True)
    shown = traitlets.Unicode("", help="whose scores the bars show when there are several faces").tag(sync=True)
    level_help = traitlets.Unicode(LEVEL_LEGEND, read_only=True, help="the level line in words").tag(sync=True)
    status = traitlets.Unicode("", help="starting: ..., stopped, or empty while results come").tag(sync=True)
    notice = traitlets.Unicode("", help="a warning for the teacher, e.g. another live view on this computer"
                               ).tag(sync=True)
    max_rate = traitlets.Float(15.0, help="most trait updates per second")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._times: deque[float] = deque()
        self._last_push = 0.0
        self._lock = threading.Lock()
        self.on_msg(self._on_custom_msg)

    def _on_custom_msg(self, _widget: object, content: dict[str, Any], _buffers: object) -> None:
        """A box clicked on the linked preview: follow that face, or (clicked again) go back to ``aggregate``."""
        if isinstance(content, dict) and content.get("type") == "select" and isinstance(content.get("id"), int):
            self.face = None if content["id"] == self.face else content["id"]

    def _picked(self, result: FrameResult) -> int | None:
        """The row of the clicked face in ``result``, if it is there."""
        if self.face is None:
            return None
        rows = np.flatnonzero(result.track_ids == self.face)
        return int(rows[0]) if len(rows) else None

    def update(self, result: FrameResult) -> None:
        """Take one pipeline result; pushes traits at most ``max_rate`` times per second. Thread-safe."""
        now = time.monotonic()
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > 1.0:
                self._times.popleft()
            if now - self._last_push < 1.0 / self.max_rate:
                return
            self._last_push = now
            span = self._times[-1] - self._times[0]
            fps = (len(self._times) - 1) / span if span > 0 else 0.0
        values = self._aggregate(result)
        with self.hold_sync():
            if list(result.labels) != self.labels:
                self.labels = list(result.labels)
            self.faces = len(result.probs)
            self.shown = shown_text(self.aggregate, self.faces, self._picked(result) is not None,
                                    self._learning(result))
            self.fps = round(fps, 1)
            self.level = level_text(result.level, result.width, result.height)
            self.age = self._age(result)
            if values is not None:
                self.values = [round(float(v), 3) for v in values]
                self.dominant = result.labels[int(values.argmax())]
            else:
                self.dominant = ""

    def _learning(self, result: FrameResult) -> float:
        """How much of the shown face's resting expression is learned (the least of all faces for the mean)."""
        if not len(result.resting):
            return 1.0
        picked = self._picked(result)
        if picked is not None:
            return float(result.resting[picked])
        if self.aggregate == "mean":
            return float(result.resting.min())
        return float(result.resting[largest_face(result.boxes) or 0])

    def _age(self, result: FrameResult) -> int:
        ages = result.ages_ms
        if not len(ages):
            return 0
        picked = self._picked(result)
        if picked is not None:
            return int(ages[picked])
        if self.aggregate == "mean":
            return int(ages.max())
        return int(ages[largest_face(result.boxes) or 0])

    def _aggregate(self, result: FrameResult) -> np.ndarray | None:
        if not len(result.probs):
            return None
        picked = self._picked(result)
        if picked is not None:
            return np.asarray(result.probs[picked])
        if self.aggregate == "mean":
            return np.asarray(result.probs.mean(axis=0))
        return np.asarray(result.probs[largest_face(result.boxes) or 0])

"""Kernel-side frame sources, fed to a :class:`~emowidgets.pipeline.Pipeline` on the caller's thread; their
results reach the pipeline's listeners as a browser camera's do.

``VideoFileSource`` plays a recording of a class (or a test clip) through the same pipeline the live
widgets use. In real-time mode it keeps to the clip's clock and drops the frames it is too late for
(like a live stream); otherwise it processes every frame as fast as it can.

``CameraSource`` reads a camera attached to the computer the kernel runs on, with OpenCV, for frontends
whose page cannot open one (VS Code's notebooks, an insecure origin): the frames never reach the browser.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from emowidgets.detect import DetectorOptions
from emowidgets.errors import BusyError, CameraError, ClosedError, FrameError, OptionsError, VideoFileError
from emowidgets.infer import ClassifierOptions
from emowidgets.ladder import GALLERY_LEVELS, LEVELS, LadderOptions
from emowidgets.nativelog import native_stderr_to_logging
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.vocab import FrameResult

log = logging.getLogger("emowidgets.sources")

# Settings per kind of source (measured in docs/classroom.md with ``benchmarks/gallery.py``): a webcam
# shows one or a few large faces; a shared video-call gallery shows up to ~36 small ones, which need
# the tiled detector and close-fitting classifier batches (on 2 CPU cores a padded batch of 32 faces
# costs about twice a batch of 24).
DETECTOR_PRESETS: dict[str, DetectorOptions] = {
    "camera": DetectorOptions(model="short"),
    "gallery": DetectorOptions(model="short", tiles=(3, 3)),
}
CLASSIFIER_BUCKETS: dict[str, tuple[int, ...]] = {
    "camera": ClassifierOptions().buckets,
    "gallery": (1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 48, 64),
}
LADDERS = {"camera": LEVELS, "gallery": GALLERY_LEVELS}


def detector_for(kind: str) -> DetectorOptions:
    """The detector settings for ``"camera"`` or ``"gallery"`` (a shared screen or a recorded class)."""
    if kind not in DETECTOR_PRESETS:
        raise OptionsError(f"source kind must be one of {sorted(DETECTOR_PRESETS)}, not {kind!r}")
    return DETECTOR_PRESETS[kind]


def pipeline_options(kind: str, model: str = "main") -> PipelineOptions:
    """Pipeline settings for ``"camera"`` or ``"gallery"`` with the classifier ``model``."""
    return PipelineOptions(detector=detector_for(kind),
                           classifier=ClassifierOptions(model=model, buckets=CLASSIFIER_BUCKETS[kind]),
                           ladder=LadderOptions(levels=LADDERS[kind]), grid="auto" if kind == "gallery" else "none")


DETECTORS = ("short", "full", "gallery")
"""The detector choices of ``live()`` and ``classroom()`` (their one detector knob, ``detector=``)."""


def entry_options(detector: str, model: str, *, auto_calibrate: bool = False) -> PipelineOptions:
    """The pipeline settings ``live()`` and ``classroom()`` make from their ``detector`` and ``model``: ``"short"``
    (webcam distance) or ``"full"`` (small, distant faces) is the camera preset with that detector model;
    ``"gallery"`` (a shared video-call gallery: each call tile searched on its own, up to ~36 small faces) the
    gallery preset (:func:`pipeline_options`).

    Raises:
        OptionsError: another detector, or a model name that is not allowed (the messages list the valid ones).
    """
    name = detector.lower() if isinstance(detector, str) else detector
    if name not in DETECTORS:
        raise OptionsError(f"detector must be 'short' (webcam distance), 'full' (small, distant faces) or 'gallery' "
                           f"(a shared video-call gallery), not {detector!r}")
    kind = "gallery" if name == "gallery" else "camera"
    options = pipeline_options(kind, model)
    if kind == "camera":
        short_or_full: Literal["short", "full"] = "full" if name == "full" else "short"
        options = dataclasses.replace(options, detector=dataclasses.replace(options.detector, model=short_or_full))
    return dataclasses.replace(options, auto_calibrate=auto_calibrate)


class SourceState(enum.Enum):
    """Life cycle of a source: ``IDLE`` -> ``RUNNING`` -> ``ENDED`` (end of file), ``STOPPED`` or ``FAILED``
(reading failed; :attr:`FrameSource.error` says why). A source that ended, failed or was stopped during a run
can run again."""

    IDLE = "idle"
    RUNNING = "running"
    ENDED = "ended"
    STOPPED = "stopped"
    FAILED = "failed"


class FrameSource:
    """What the sources share: :meth:`run` feeds :meth:`frames` to a pipeline until the end or :meth:`stop`.

    Attributes:
        state: where the source is in its life cycle.
        frames_read, frames_dropped: frames taken from the source, and those skipped for being late.
        frames_failed, last_frame_error: frames whose processing failed and were skipped, as the pipeline's worker
            skips them, and why the last one failed.
        error: why the source failed (``FAILED``), else ``""``.
    """

    def __init__(self) -> None:
        self.state = SourceState.IDLE
        self.frames_read = 0
        self.frames_dropped = 0
        self.frames_failed = 0
        self.last_frame_error = ""
        self.error = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(rgb (H, W, 3) uint8, timestamp_ms)`` in order; timestamps strictly increase."""
        raise NotImplementedError

    @property
    def rate(self) -> float:
        """Frames per second the source delivers whether or not they are processed (0: as fast as they are
        taken); the quality ladder compares the processed rate with it."""
        return 0.0

    def run(self, pipeline: Pipeline, on_result: Callable[[FrameResult], None] | None = None) -> int:
        """Process the frames with ``pipeline`` (synchronously, on this thread) until the end or :meth:`stop`;
        each result goes to the pipeline's listeners (:meth:`Pipeline.process_and_deliver`, the path a browser
        camera's frames take too).

        Sets :attr:`state` to ``ENDED`` at the end of the frames, ``STOPPED`` after :meth:`stop` (also one that
        came before ``run``, so a source closed right after it was started never runs), or ``FAILED`` (with
        :attr:`error`, re-raised) if reading fails or the pipeline was closed under it. A frame whose processing
        fails is skipped and counted in :attr:`frames_failed` (a failing listener is logged, as on the worker).
        Returns the number of frames processed. ``on_result`` is deprecated: add it with
        ``pipeline.add_listener`` instead (here it listens for this run only).

        Raises:
            BusyError: the source is already running.
            VideoFileError: the file turned out corrupt (the source is then ``FAILED``).
            ClosedError: the pipeline was closed while the source was not being stopped.
        """
        with self._lock:
            if self.state is SourceState.RUNNING:
                raise BusyError("this source is already running: stop() it first, or make another")
            self.state, self.error = SourceState.RUNNING, ""
        if on_result is not None:
            warnings.warn("FrameSource.run(pipeline, on_result) is deprecated: results go to the pipeline's "
                          "listeners; call pipeline.add_listener(on_result) instead", DeprecationWarning, stacklevel=2)
        processed = 0
        try:
            if on_result is not None:
                pipeline.add_listener(on_result)
            pipeline.set_camera_rate(self.rate)
            for seq, (rgb, ts) in enumerate(self.frames()):
                try:
                    pipeline.process_and_deliver(rgb, seq=seq, timestamp_ms=ts)
                except ClosedError:
                    if self._stop.is_set():  # closed while stopping (a session's close): a plain stop
                        break
                    raise
                except Exception as exc:  # counted and logged by the pipeline, as the worker's: skip the frame
                    self.frames_failed += 1
                    self.last_frame_error = str(exc) if isinstance(exc, FrameError) else f"{type(exc).__name__}: {exc}"
                    continue
                processed += 1
        except BaseException as exc:
            self.state, self.error = SourceState.FAILED, str(exc) or type(exc).__name__
            raise
        finally:
            if on_result is not None:
                pipeline.remove_listener(on_result)
        self.state = SourceState.STOPPED if self._stop.is_set() else SourceState.ENDED
        return processed

    def stop(self) -> None:
        """Ask :meth:`run` (on another thread) to stop after the current frame."""
        self._stop.set()


class VideoFileSource(FrameSource):
    """RGB frames of a video file with their timestamps.

    Args:
        path: the video file (anything FFmpeg reads: MP4, WebM, MKV, ...).
        realtime: keep to the clip's clock, dropping frames that are already late; ``False`` takes
            every frame.
        size: ``(width, height)`` to scale frames to, or ``None`` for the file's size.

    Raises:
        VideoFileError: the file is missing, corrupt or has no video stream.
    """

    def __init__(self, path: str | Path, realtime: bool = True, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.realtime = realtime
        if not self.path.is_file():
            raise VideoFileError(f"no such video file: {self.path}")
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoFileError(f"{self.path} has no video stream")
                stream = container.streams.video[0]
                self.fps = float(stream.average_rate or 25)
                if stream.duration and stream.time_base:
                    self.duration_s = float(stream.duration * stream.time_base)
                else:
                    self.duration_s = (container.duration or 0) / 1e6
                native = (stream.codec_context.width, stream.codec_context.height)
        except av.FFmpegError as exc:
            raise VideoFileError(f"cannot read video file {self.path}: {exc} (is it a complete video file?)"
                                 ) from exc
        self.size = size or native

    @property
    def rate(self) -> float:
        """The clip's frame rate in real-time mode; 0 otherwise (every frame is taken)."""
        return self.fps if self.realtime else 0.0

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(rgb (H, W, 3) uint8, timestamp_ms)`` in order; timestamps strictly increase.

        In real-time mode it waits for each frame's time and skips frames whose time has passed.

        Raises:
            VideoFileError: the file turns out to be corrupt while decoding.
        """
        import av

        width, height = self.size
        start = time.monotonic()
        last_ts = -1
        try:
            with av.open(str(self.path)) as container:
                for frame in container.decode(video=0):
                    if self._stop.is_set():
                        return
                    ts = max(round((frame.time or 0.0) * 1000), last_ts + 1)
                    self.frames_read += 1
                    if self.realtime:
                        delay = start + ts / 1000 - time.monotonic()
                        if delay < -1.0 / self.fps:  # late by more than a frame: drop it, like a live stream
                            self.frames_dropped += 1
                            continue
                        if delay > 0 and self._stop.wait(delay):
                            return
                    last_ts = ts
                    yield frame.to_ndarray(width=width, height=height, format="rgb24"), ts
        except av.FFmpegError as exc:
            raise VideoFileError(f"video file {self.path} is corrupt after frame {self.frames_read}: {exc}"
                                 ) from exc


class CameraSource(FrameSource):
    """RGB frames of a camera read in the kernel with OpenCV, timestamped on arrival.

    Args:
        device: the camera's index (``0``: the first camera) or anything ``cv2.VideoCapture`` opens (a
            stream URL; a video file stands in for a camera in tests, read as fast as it decodes).
        size: ``(width, height)`` to ask the camera for (it may pick another size).

    Raises:
        CameraError: the camera cannot be opened (none attached, or another program holds it).
    """

    def __init__(self, device: int | str = 0, size: tuple[int, int] = (640, 480)) -> None:
        super().__init__()
        import cv2

        self.device = device
        with native_stderr_to_logging():  # OpenCV warns on stderr about each backend that fails to open it
            self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise CameraError(f"cannot open camera {device!r} in the kernel: is one attached to the computer the "
                              "kernel runs on, and free (not used by another program)?")
        if isinstance(device, int):
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued while we worked

    def __str__(self) -> str:
        return f"camera {self.device!r}"

    @property
    def rate(self) -> float:
        """The frame rate the camera reports (0 if it does not)."""
        import cv2

        return max(0.0, float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0))

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(rgb, timestamp_ms)`` until the camera stops delivering (unplugged, end of a file) or
        :meth:`stop`; then the camera is released."""
        import cv2

        start = time.monotonic()
        last_ts = -1
        try:
            while not self._stop.is_set():
                ok, bgr = self._capture.read()
                if not ok:
                    return
                self.frames_read += 1
                last_ts = max(round((time.monotonic() - start) * 1000), last_ts + 1)
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), last_ts
        finally:
            self.close()

    def close(self) -> None:
        """Release the camera (again is a no-op)."""
        self._capture.release()

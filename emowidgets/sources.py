"""Kernel-side frame sources: a video file decoded with PyAV, fed to a :class:`~emowidgets.pipeline.Pipeline`.

``VideoFileSource`` plays a recording of a class (or a test clip) through the same pipeline the live
widgets use. In real-time mode it keeps to the clip's clock and drops the frames it is too late for
(like a live stream); otherwise it processes every frame as fast as it can.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from emowidgets.detect import DetectorOptions
from emowidgets.errors import OptionsError, VideoFileError
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.vocab import FrameResult

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


def detector_for(kind: str) -> DetectorOptions:
    """The detector settings for ``"camera"`` or ``"gallery"`` (a shared screen or a recorded class)."""
    if kind not in DETECTOR_PRESETS:
        raise OptionsError(f"source kind must be one of {sorted(DETECTOR_PRESETS)}, not {kind!r}")
    return DETECTOR_PRESETS[kind]


def pipeline_options(kind: str, model: str = "main") -> PipelineOptions:
    """Pipeline settings for ``"camera"`` or ``"gallery"`` with the classifier ``model``."""
    return PipelineOptions(detector=detector_for(kind),
                           classifier=ClassifierOptions(model=model, buckets=CLASSIFIER_BUCKETS[kind]))


class SourceState(enum.Enum):
    """Life cycle of a source: ``IDLE`` -> ``RUNNING`` -> ``ENDED`` (end of file) or ``STOPPED``."""

    IDLE = "idle"
    RUNNING = "running"
    ENDED = "ended"
    STOPPED = "stopped"
    FAILED = "failed"


class VideoFileSource:
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
        self.path = Path(path)
        self.realtime = realtime
        self.state = SourceState.IDLE
        self.frames_read = 0
        self.frames_dropped = 0
        self.error = ""
        self._stop = threading.Event()
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

    def run(self, pipeline: Pipeline, on_result: Callable[[FrameResult], None] | None = None) -> int:
        """Process the frames with ``pipeline`` (synchronously, on this thread) until the end or :meth:`stop`.

        Sets :attr:`state` to ``ENDED`` at the end of the file, ``STOPPED`` after :meth:`stop`, or
        ``FAILED`` (with :attr:`error`) if decoding fails. Returns the number of frames processed.
        """
        if self.state is SourceState.RUNNING:
            raise RuntimeError("this source is already running")
        self._stop.clear()
        self.state = SourceState.RUNNING
        processed = 0
        try:
            for seq, (rgb, ts) in enumerate(self.frames()):
                result = pipeline.process_array(rgb, seq, ts)
                processed += 1
                if on_result is not None:
                    on_result(result)
        except VideoFileError as exc:
            self.state, self.error = SourceState.FAILED, str(exc)
            raise
        self.state = SourceState.STOPPED if self._stop.is_set() else SourceState.ENDED
        return processed

    def stop(self) -> None:
        """Ask :meth:`run` (on another thread) to stop after the current frame."""
        self._stop.set()

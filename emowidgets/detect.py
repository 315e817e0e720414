"""Face detection with MediaPipe Tasks' BlazeFace (the only module that imports mediapipe).

A leaf around MediaPipe: frames in, :class:`~emowidgets.boxes.Detections` out. Box geometry lives in
:mod:`emowidgets.boxes`, crop framing in :mod:`emowidgets.preprocess`.

Short range (128x128 input) suits a webcam; full range (192x192, sparse) finds the small faces of a
group photo. The tiled mode runs the detector on an overlapping grid of crops and maps the boxes
back, for video-call galleries whose faces are too small for one pass.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from emowidgets.assets import DETECTOR_FILES, detector_path
from emowidgets.boxes import Detections, iou_matrix, nms, overlap_of_smaller, pixel_spans
from emowidgets.decode import as_rgb
from emowidgets.errors import ModelFileError, OptionsError
from emowidgets.nativelog import native_stderr_to_logging


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """How to detect faces.

    Attributes:
        model: ``"short"`` (webcam distance, fastest) or ``"full"`` (small and distant faces).
        min_confidence: detections scoring below this are dropped.
        tiles: ``(rows, cols)`` grid for the tiled mode; ``(1, 1)`` is a single pass.
        overlap: fraction of a tile shared with its neighbours in the tiled mode.
        nms_iou: boxes overlapping more than this (IoU) after tiling are merged.
        tile_min_confidence: the least score of a face searched in its own call tile
            (:meth:`FaceDetector.detect_tiles`): there a real face is large and scores 0.80-0.86 on the test
            galleries, where a camera-off tile's initials in a circle scores up to 0.56.
        check_min_confidence: the score a face needs from :meth:`FaceDetector.check` (the full-range model
            on the face's surroundings) to count as a face.
    """

    model: Literal["short", "full"] = "short"
    min_confidence: float = 0.5
    tiles: tuple[int, int] = (1, 1)
    overlap: float = 0.2
    nms_iou: float = 0.4
    tile_min_confidence: float = 0.7
    check_min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.model not in DETECTOR_FILES:
            raise OptionsError(f"detector model must be one of {sorted(DETECTOR_FILES)}, not {self.model!r}")
        if not 0 <= self.tile_min_confidence <= 1 or not 0 <= self.check_min_confidence <= 1:
            raise OptionsError("tile_min_confidence and check_min_confidence must be in [0, 1], got "
                               f"{self.tile_min_confidence}, {self.check_min_confidence}")
        if not 0 <= self.min_confidence <= 1 or not 0 <= self.overlap < 1 or not 0 < self.nms_iou <= 1:
            raise OptionsError("min_confidence and nms_iou must be in [0, 1], overlap in [0, 1); got "
                               f"{self.min_confidence}, {self.nms_iou}, {self.overlap}")
        if len(self.tiles) != 2 or min(self.tiles) < 1:
            raise OptionsError(f"tiles must be (rows, cols) of at least 1, got {self.tiles!r}")


CHECK_SIDE = 256
"""Side in px of the square :meth:`FaceDetector.check` shows the full-range model (it works at 192)."""

# LiteRT warns once per process, at the first inference whose input tensor is not aligned (any call, as memory
# falls); detection runs quiet (emowidgets.nativelog) until that line has gone by.
_UNALIGNED_WARNING = "Input tensor memory is not aligned"
_unaligned_warned = threading.Event()


def _close_all(detectors: list[Any]) -> None:
    """Close MediaPipe detectors without their "DestroyAccelerator" lines on stderr."""
    with native_stderr_to_logging():
        for detector in detectors:
            detector.close()


def _mediapipe_detector(model_path: Path, min_confidence: float) -> Any:
    """A MediaPipe Tasks face detector (image mode) on ``model_path``.

    Raises:
        ModelFileError: the model file is missing, empty or corrupt.
    """
    from mediapipe.tasks import python as mp_python
    from mediapipe.tasks.python import vision

    mp_options = vision.FaceDetectorOptions(
        base_options=mp_python.BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.IMAGE,
        min_detection_confidence=min_confidence,
    )
    try:
        with native_stderr_to_logging():  # LiteRT/XNNPACK start-up lines, see emowidgets.nativelog
            return vision.FaceDetector.create_from_options(mp_options)
    except (RuntimeError, ValueError, OSError) as exc:  # MediaPipe's types for a missing, empty or corrupt model
        raise ModelFileError(f"face detector model {model_path} cannot be loaded (missing, empty or corrupt: "
                             f"reinstall emowidgets): {exc}") from exc


def _shifted(det: Detections, x0: int, y0: int) -> Detections:
    """Faces found in a crop whose corner is ``(x0, y0)``, in the frame's pixels."""
    offset = np.array([x0, y0], np.float32)
    return Detections(det.boxes + np.concatenate([offset, [0, 0]]), det.scores, det.keypoints + offset)


def _cut_by_tile(boxes: np.ndarray, tile: tuple[int, int, int, int], frame: tuple[int, int]) -> np.ndarray:
    """Which boxes ``(N, 4)``, in the tile's pixels, touch an edge of the tile ``x0, y0, w, h`` that lies inside
    the frame ``(w, h)``: there the tile may have cut a face."""
    x0, y0, tw, th = tile
    w, h = frame
    x, y, bw, bh = boxes.T
    return (((x <= 1) & (x0 > 0)) | ((y <= 1) & (y0 > 0))
            | ((x + bw >= tw - 1) & (x0 + tw < w)) | ((y + bh >= th - 1) & (y0 + th < h)))


class FaceDetector:
    """MediaPipe BlazeFace wrapper returning :class:`Detections`. Use as a context manager or ``close()``."""

    def __init__(self, options: DetectorOptions, model_path: Path) -> None:
        self.options = options
        self._detector = _mediapipe_detector(model_path, options.min_confidence)
        self._checker: Any = None  # the full-range model of check(), made on first use
        self._close = weakref.finalize(self, _close_all, [self._detector])
        # MediaPipe makes its C calls on a ThreadPoolExecutor, which Python shuts down in the threading exit
        # phase, before atexit; an unclosed detector then prints a traceback at exit. Close it in that phase,
        # first (the same hook concurrent.futures uses).
        threading._register_atexit(self._close)  # type: ignore[attr-defined]

    @classmethod
    def create_from_options(cls, options: DetectorOptions | None = None) -> FaceDetector:
        """Build a detector from the shipped model file (see :mod:`emowidgets.assets`)."""
        options = options or DetectorOptions()
        return cls(options, detector_path(options.model))

    def _detect_once(self, rgb: np.ndarray, detector: Any = None) -> Detections:
        import mediapipe as mp

        result = (detector or self._detector).detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not result.detections:
            return Detections.empty()
        h, w = rgb.shape[:2]
        boxes = np.array([[d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width,
                           d.bounding_box.height] for d in result.detections], np.float32)
        scores = np.array([d.categories[0].score for d in result.detections], np.float32)
        kps = np.array([[[k.x * w, k.y * h] for k in d.keypoints] for d in result.detections], np.float32)
        return Detections(boxes, scores, kps)

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an RGB (or gray/RGBA) ``uint8`` frame; tiled when ``options.tiles`` asks for it (the whole
        frame, then each tile)."""
        rgb = as_rgb(image)
        rows, cols = self.options.tiles
        if (rows, cols) == (1, 1):
            return self._detect_quiet(rgb)
        h, w = rgb.shape[:2]
        th = int(np.ceil(h / (rows - (rows - 1) * self.options.overlap)))
        tw = int(np.ceil(w / (cols - (cols - 1) * self.options.overlap)))
        # The whole frame first: a face larger than a tile is found whole there. A tile's box that touches one of
        # the tile's inner edges is a piece of a face the tile cut; where it overlaps a face found whole, it goes.
        whole = self._detect_quiet(rgb)
        parts = [whole]
        for y0 in np.linspace(0, h - th, rows).astype(int):
            for x0 in np.linspace(0, w - tw, cols).astype(int):
                det = self._detect_quiet(np.ascontiguousarray(rgb[y0 : y0 + th, x0 : x0 + tw]))
                cut = _cut_by_tile(det.boxes, (x0, y0, tw, th), (w, h))
                if cut.any() and len(whole):
                    piece = cut & (overlap_of_smaller(_shifted(det, x0, y0).boxes, whole.boxes).max(1) > 0.3)
                    det = det.take(~piece)
                parts.append(_shifted(det, x0, y0))
        return nms(Detections.concat(parts), self.options.nms_iou)

    def _detect_quiet(self, rgb: np.ndarray, detector: Any = None) -> Detections:
        """One detector pass, with LiteRT's one-time alignment warning kept off stderr."""
        if _unaligned_warned.is_set():
            return self._detect_once(rgb, detector)
        with native_stderr_to_logging() as lines:
            found = self._detect_once(rgb, detector)
        if any(_UNALIGNED_WARNING in line for line in lines):
            _unaligned_warned.set()
        return found

    def detect_tiles(self, image: np.ndarray, tiles: np.ndarray) -> tuple[Detections, np.ndarray]:
        """The best face of each call tile ``(M, 4)`` (``x, y, w, h`` px) of a gallery frame, each detected in
        its own tile so that it is large for the detector, and the tile index of each face ``(N,)``. A tile
        holds one person: a second box in it is a duplicate or a face in the person's background."""
        rgb = as_rgb(image)
        h, w = rgb.shape[:2]
        parts, where = [], []
        for k, (x0, y0, x1, y1) in enumerate(pixel_spans(tiles, w, h).tolist()):
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            det = self._detect_quiet(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
            if not len(det) or det.scores.max() < self.options.tile_min_confidence:
                continue
            parts.append(_shifted(det.take(np.array([int(det.scores.argmax())])), x0, y0))
            where.append(k)
        return Detections.concat(parts), np.array(where, np.int64)

    def check(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """A second opinion on faces ``(N, 4)`` found in ``image``: the full-range model's score ``(N,)`` for a
        face over each box (IoU > 0.3), searched in a square twice the box's side round it, at 256 px; 0 where
        it sees none.

        The short-range model, searching a screen in tiles, also finds "faces" in moving shapes and colour
        fields, scoring 0.50-0.62 like real faces seen whole in a tile; the full-range model on the face's
        surroundings passed none of 167 such boxes on two ffmpeg test patterns and every one of 713 boxes on
        the four shared clips of people (docs/classroom.md, *Phantom students*).
        """
        if self._checker is None:
            self._checker = _mediapipe_detector(detector_path("full"), self.options.min_confidence)
            self._close.detach()
            self._close = weakref.finalize(self, _close_all, [self._detector, self._checker])
            threading._register_atexit(self._close)  # type: ignore[attr-defined]
        rgb = as_rgb(image)
        h, w = rgb.shape[:2]
        out = np.zeros(len(boxes), np.float32)
        for i, (x, y, bw, bh) in enumerate(np.asarray(boxes, np.float32).tolist()):
            side = max(round(2 * max(bw, bh)), 8)
            x0, y0 = round(x + bw / 2 - side / 2), round(y + bh / 2 - side / 2)
            square = np.zeros((side, side, 3), np.uint8)  # black beyond the frame's edges
            sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            square[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
            small = cv2.resize(square, (CHECK_SIDE, CHECK_SIDE),
                               interpolation=cv2.INTER_AREA if side > CHECK_SIDE else cv2.INTER_LINEAR)
            found = self._detect_quiet(small, self._checker)
            if not len(found):
                continue
            k = side / CHECK_SIDE
            seen = found.boxes * k + np.array([x0, y0, 0, 0], np.float32)
            overlap = iou_matrix(np.array([[x, y, bw, bh]], np.float32), seen)[0]
            best = int(np.argmax(overlap))
            if overlap[best] > 0.3:
                out[i] = found.scores[best]
        return out

    def close(self) -> None:
        """Release the MediaPipe graph (again is a no-op)."""
        self._close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Frame bytes -> RGB ``uint8`` array. JPEG goes through libjpeg-turbo (simplejpeg); PNG/others through Pillow.

Every failure is a :class:`~emowidgets.errors.FrameError`, so the live loop can count and skip a bad frame.
"""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from emowidgets.errors import FrameError

MAX_PIXELS = 4096 * 4096
MIN_SIDE = 16


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise FrameError(f"frame is {width}x{height}, over the {MAX_PIXELS}-pixel limit; send a smaller frame")
    if min(width, height) < MIN_SIDE:
        raise FrameError(f"frame is {width}x{height}; at least {MIN_SIDE} px per side is needed")


def decode(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode an encoded frame to ``(H, W, 3)`` RGB ``uint8``.

    Args:
        data: JPEG (fast path) or any Pillow-readable format (PNG, WebP...); alpha is dropped,
            grayscale is expanded to 3 channels.

    Raises:
        FrameError: empty, corrupt, unsupported, too small or too large.
    """
    buf = bytes(data)
    if not buf:
        raise FrameError("empty frame")
    if buf[:2] == b"\xff\xd8":
        try:
            width, height, _, _ = simplejpeg.decode_jpeg_header(buf)
            _check_size(width, height)
            return simplejpeg.decode_jpeg(buf, colorspace="RGB")
        except ValueError as exc:
            raise FrameError(f"corrupt JPEG: {exc}") from exc
    try:
        with Image.open(io.BytesIO(buf)) as img:
            _check_size(*img.size)
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise FrameError(f"not a decodable image ({len(buf)} bytes): {exc}") from exc


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Normalise an array frame to contiguous ``(H, W, 3)`` RGB ``uint8`` (gray and RGBA accepted)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise FrameError(f"frame dtype is {arr.dtype}; uint8 is expected")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise FrameError(f"frame shape {arr.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    _check_size(arr.shape[1], arr.shape[0])
    return np.ascontiguousarray(arr)

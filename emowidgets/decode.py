"""Frame bytes -> RGB ``uint8`` array. JPEG goes through libjpeg-turbo (simplejpeg); PNG and WebP through Pillow.

Every failure is a :class:`~emowidgets.errors.FrameError`, so the live loop can count and skip a bad frame.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from emowidgets.errors import FrameError

FORMATS = ("PNG", "WEBP")
"""Pillow formats decoded besides JPEG (which goes through simplejpeg); others are refused by name."""
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
        data: JPEG (fast path), PNG or WebP: what browsers and cameras send. Alpha is dropped, grayscale
            is expanded to 3 channels, 16-bit samples are scaled to 8 bits (not clipped).

    Raises:
        FrameError: empty, corrupt, another format (named), too small or too large.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError(f"an encoded frame must be bytes (JPEG, PNG or WebP), not {type(data).__name__}")
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
        with Image.open(io.BytesIO(buf), formats=FORMATS) as img:
            _check_size(*img.size)
            return _to_rgb8(img)
    except UnidentifiedImageError as exc:
        name = _format_name(buf)
        what = f"a {name} image" if name else "not an image this package knows"
        raise FrameError(f"frame is {what}; frames must be JPEG, PNG or WebP") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FrameError(f"corrupt {_format_name(buf)} frame ({len(buf)} bytes): {exc}") from exc


def decode_photo(image: Any) -> np.ndarray:
    """A still photo as ``(H, W, 3)`` RGB ``uint8``, upright: its EXIF orientation applied (a phone's photo
    taken upside down has its pixels stored rotated and a tag saying so; classified unrotated it reads wrong).

    Args:
        image: encoded bytes (JPEG, PNG, WebP), a file path (``str`` or ``os.PathLike``), a PIL image or an
            array (as :func:`as_rgb`; arrays carry no orientation).

    Raises:
        FrameError: another type (named), a missing or unreadable file, or what :func:`decode` and
            :func:`as_rgb` refuse.
    """
    if isinstance(image, np.ndarray):
        return as_rgb(image)
    if isinstance(image, Image.Image):
        _check_size(*image.size)
        return _to_rgb8(ImageOps.exif_transpose(image))
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        try:
            image = path.read_bytes()
        except OSError as exc:
            raise FrameError(f"cannot read photo {path}: {exc.strerror or exc}") from exc
    if not isinstance(image, bytes | bytearray | memoryview):
        raise FrameError(f"a photo must be encoded bytes, a file path, a PIL image or a numpy array, not "
                         f"{type(image).__name__}")
    buf = bytes(image)
    rgb = decode(buf)
    if _orientation(buf) in (1, 0):
        return rgb
    with Image.open(io.BytesIO(buf)) as img:  # decode() has checked it: rotate Pillow's own decoding of it
        return _to_rgb8(ImageOps.exif_transpose(img))


def _orientation(buf: bytes) -> int:
    """The EXIF orientation tag of an encoded image (1: upright, 0: none); only the header is read."""
    try:
        with Image.open(io.BytesIO(buf)) as img:
            return int(img.getexif().get(0x0112, 1))
    except Exception:  # decode() accepted the image; a broken EXIF block only loses the orientation
        return 0


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """RGB ``uint8`` of an opened image, scaling 16- and 32-bit integer samples down instead of clipping them."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey PNGs open as one of these
        wide = np.asarray(img).astype(np.uint32)
        gray = np.round(wide * (255 / 65535)).clip(0, 255).astype(np.uint8)
        return as_rgb(gray)
    return np.asarray(img.convert("RGB"))


def _format_name(buf: bytes) -> str:
    """Pillow's name for the format of ``buf`` (``"TIFF"``), ``""`` if none; only the header is read."""
    try:
        with Image.open(io.BytesIO(buf)) as img:
            return str(img.format or "")
    except Exception:  # any reader may fail on a broken header; the name is only for the message
        return ""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Normalise an array frame to contiguous ``(H, W, 3)`` RGB ``uint8`` (gray and RGBA accepted).

    ``uint16`` samples are scaled from 0..65535, floats must lie in ``[0, 1]`` (scaled by 255).

    Raises:
        FrameError: another dtype, floats outside ``[0, 1]`` (or NaN), a bad shape or size.
    """
    if not isinstance(image, np.ndarray) and not hasattr(image, "__array__"):
        raise FrameError(f"a frame must be a numpy array, not {type(image).__name__}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise FrameError(f"frame shape {arr.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    _check_size(arr.shape[1], arr.shape[0])  # shape and size first: a huge frame is refused before any copy
    if arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float32) * (255 / 65535)).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
            raise FrameError("a float frame must hold finite values in [0, 1]")
        arr = np.round(arr * 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise FrameError(f"frame dtype is {arr.dtype}; uint8, uint16 or float in [0, 1] is expected")
    if arr.ndim == 2 or arr.shape[2] == 1:
        arr = np.repeat(arr.reshape(*arr.shape[:2], 1), 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)

"""Participants' names read from a video call's tiles (OCR of each tile's name label), text only.

Zoom, Meet and Teams print each participant's name at the bottom left of their tile. :class:`NameReader`
reads it with RapidOCR (PP-OCR ONNX models shipped inside the ``rapidocr`` wheel, run by onnxruntime, no
network): text detection and recognition on the lower part of each tile, the lowest line on the left
kept. The engine is the optional ``names`` extra and is imported here only, when a reader is made; without
it :class:`NamesUnavailableError` says how to install it in one line. No pixel is kept: only the text.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from emowidgets.boxes import pixel_spans
from emowidgets.errors import OptionsError

STRIP = 0.3
"""The lower share of a tile searched for the name label."""
INSTALL = "reading names from the call needs the 'names' extra: pip install 'emowidgets[names]'"
_PARTICLES = {"la", "le", "las", "los", "lo"}


class NamesUnavailableError(OptionsError):
    """The OCR engine (the ``names`` extra) is not installed."""


def clean_name(text: str) -> str:
    """A read label as a name: one space between words, no ellipsis or stray marks at the ends, and a
    word-initial lower-case ``l`` read as the ``I`` it is in a name ("lyer" -> "Iyer"; sans-serif fonts draw
    both alike)."""
    text = unicodedata.normalize("NFC", text).replace("...", "\u2026")
    text = re.sub(r"\s+", " ", text).strip(" \u2026.,;:|_-'\"")
    words = [("I" + w[1:] if len(w) > 1 and w[0] == "l" and w[1].isalpha() and w.lower() not in _PARTICLES
              else w) for w in text.split(" ")]
    return re.sub(r"(?<=-)l(?=[a-z])", "I", " ".join(words))


class NameReader:
    """Reads the name label of each call tile; ``min_confidence``: weaker reads give ``""``.

    Raises:
        NamesUnavailableError: the ``names`` extra is not installed.
    """

    def __init__(self, min_confidence: float = 0.8) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise NamesUnavailableError(INSTALL) from exc
        self.min_confidence = min_confidence
        self._ocr = RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False,
                                     "Global.min_height": 0, "Det.limit_type": "max", "Det.limit_side_len": 2000})

    def read_tile(self, tile: np.ndarray) -> str:
        """The name in one tile ``(h, w, 3)`` RGB uint8, ``""`` when none is read confidently."""
        h = tile.shape[0]
        strip = np.ascontiguousarray(tile[int(h * (1 - STRIP)):])
        if strip.shape[0] < 8 or strip.shape[1] < 16:
            return ""
        out = self._ocr(strip)
        if not out.txts:
            return ""
        # the label: the lowest line, preferring the left (a caption or a shirt print sits higher or further right)
        k = int(np.argmax([b[:, 1].mean() - 0.2 * b[:, 0].min() for b in out.boxes]))
        name = clean_name(out.txts[k])
        return name if out.scores[k] >= self.min_confidence and any(c.isalpha() for c in name) else ""

    def read(self, rgb: np.ndarray, tiles: np.ndarray) -> tuple[str, ...]:
        """The name in each tile ``(M, 4)`` x, y, w, h px of the frame ``rgb``, ``""`` where none is read."""
        h, w = rgb.shape[:2]
        return tuple(self.read_tile(rgb[y0:y1, x0:x1]) for x0, y0, x1, y1 in pixel_spans(tiles, w, h).tolist())

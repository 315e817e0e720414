"""Participants' names read from a video call's tiles (OCR of each tile's name label), text only.

Zoom, Meet and Teams print each participant's name at the bottom left of their tile. :class:`NameReader`
reads it with RapidOCR (PP-OCR ONNX models shipped inside the ``rapidocr`` wheel, run by onnxruntime, no
network): text detection and recognition on the lower part of each tile, enlarged 1.5x, the lowest line on the
left kept, a space the label's pixels do not show taken out (:func:`join_split_words`). The engine is the
optional ``names`` extra and is imported here only, when a reader is made; without it
:class:`NamesUnavailableError` says how to install it in one line. No pixel is kept: only the text.

A 49-tile gallery takes seconds to read, so a stream reads it on :class:`BackgroundReader`'s thread (one read at
a time, the latest layout's frame first) while frames go on; each tile's name is the :func:`vote` of its last
reads, so a read garbled once by the video behind a label does not rename the student.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from emowidgets.boxes import pixel_spans
from emowidgets.errors import OptionsError

STRIP = 0.3
"""The lower share of a tile searched for the name label."""
UPSCALE = 1.5
"""The label strip is enlarged this much (bicubic) before OCR: a 49-tile 1080p gallery's labels are ~12 px high,
too small for the text detector (Meet's plain labels over video were missed whole) and for telling spaces."""
INSTALL = ("reading names from the call needs the 'names' extra: pip install 'emowidgets[names]' && "
           "pip install --no-deps rapidocr==3.10.0")
VOTES = 3
"""Reads of a tile kept for its vote (:func:`vote`)."""
_PARTICLES = {"la", "le", "las", "los", "lo"}
log = logging.getLogger("emowidgets.names")


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
    """Reads the name label of each call tile; ``min_confidence``: weaker reads give ``""``; ``upscale``: how much
    the label strip is enlarged first.

    Raises:
        NamesUnavailableError: the ``names`` extra is not installed.
    """

    def __init__(self, min_confidence: float = 0.8, upscale: float = UPSCALE) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise NamesUnavailableError(INSTALL) from exc
        self.min_confidence, self.upscale = min_confidence, upscale
        # one core: the reader runs beside the frame loop, and one thread is as fast here (44 vs 52 ms a tile)
        # the whole-pipeline call returns a RapidOCROutput (txts, boxes, scores); its annotation is the union of
        # every stage's output, so it is held as Any
        self._ocr: Any = RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False,
                                     "Global.min_height": 0, "Det.limit_type": "max", "Det.limit_side_len": 2000,
                                     "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                                     "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read_tile(self, tile: np.ndarray) -> str:
        """The name in one tile ``(h, w, 3)`` RGB uint8, ``""`` when none is read confidently."""
        h = tile.shape[0]
        strip = tile[int(h * (1 - STRIP)):]
        if strip.shape[0] < 8 or strip.shape[1] < 16:
            return ""
        if self.upscale != 1:
            strip = cv2.resize(strip, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_CUBIC)
        out = self._ocr(np.ascontiguousarray(strip))
        if not out.txts:
            return ""
        # the label: the lowest line, preferring the left (a caption or a shirt print sits higher or further right)
        k = int(np.argmax([b[:, 1].mean() - 0.2 * b[:, 0].min() for b in out.boxes]))
        name = clean_name(join_split_words(out.txts[k], strip, out.boxes[k]))
        return name if out.scores[k] >= self.min_confidence and any(c.isalpha() for c in name) else ""

    def read(self, rgb: np.ndarray, tiles: np.ndarray) -> tuple[str, ...]:
        """The name in each tile ``(M, 4)`` x, y, w, h px of the frame ``rgb``, ``""`` where none is read."""
        h, w = rgb.shape[:2]
        return tuple(self.read_tile(rgb[y0:y1, x0:x1]) for x0, y0, x1, y1 in pixel_spans(tiles, w, h).tolist())


WORD_GAP = 0.2
"""A gap between words on a label is at least this share of the text line's height (letters sit closer)."""


def word_gaps(line: np.ndarray) -> int | None:
    """How many gaps between words a light-on-dark text line ``(h, w, 3)`` shows: runs of columns with no ink in
    its middle half at least ``WORD_GAP`` of its height wide; ``None`` on a light background, where ink is not
    told apart."""
    grey = line.min(axis=2).astype(np.float32)
    h = grey.shape[0]
    back, ink = np.percentile(grey, 30), np.percentile(grey, 99)
    if h < 8 or back > 80 or ink - back < 100:
        return None
    inked = grey[h // 4:h - h // 4].max(axis=0) > (back + ink) / 2
    cols = np.flatnonzero(inked)
    if len(cols) < 2:
        return 0
    runs = np.diff(cols) - 1  # blank columns between inked ones, the margins left out
    return int(np.sum(runs >= WORD_GAP * h))


def join_split_words(text: str, strip: np.ndarray, box: np.ndarray) -> str:
    """``text`` read from the line ``box`` of ``strip`` with a space too many taken out where the pixels show fewer
    gaps between words than the text has spaces: only before a lower-case letter ("Kum ar" -> "Kumar"; a word
    of a name starts with a capital, and a particle such as "de" sits after a real gap, which is counted)."""
    spaces = [m.start() for m in re.finditer(r" (?=[^\W\d_])", text) if text[m.start() + 1].islower()]
    if not spaces:
        return text
    x0, y0 = np.floor(box.min(axis=0)).astype(int).clip(0)
    x1, y1 = np.ceil(box.max(axis=0)).astype(int)
    gaps = word_gaps(strip[y0:y1, x0:x1])
    extra = text.count(" ") - gaps if gaps is not None else 0
    for at in sorted(spaces, reverse=True)[:max(0, extra)]:
        text = text[:at] + text[at + 1:]
    return text


def vote(reads: Sequence[str]) -> str:
    """The most frequent non-empty read of a tile, a tie going to the latest; ``""`` when none."""
    counts = collections.Counter(r for r in reads if r)
    if not counts:
        return ""
    best = max(counts.values())
    return next(r for r in reversed(reads) if counts[r] == best)


class BackgroundReader:
    """Reads galleries' names with ``reader`` on a thread of its own, one at a time, so that the frame loop never
    waits for OCR. A frame submitted while another is read waits, replacing any frame already waiting (the
    latest layout wins); :meth:`take` hands each finished read over once. The thread ends when nothing waits."""

    def __init__(self, reader: NameReader) -> None:
        self.reader = reader
        self._lock = threading.Lock()
        self._waiting: tuple[int, np.ndarray, np.ndarray] | None = None
        self._running: int | None = None  # key of the read in progress
        self._done: tuple[int, tuple[str, ...]] | None = None
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int | None:
        """The key of the newest read not yet finished (waiting or in progress), ``None`` when idle."""
        with self._lock:
            return self._waiting[0] if self._waiting is not None else self._running

    def submit(self, key: int, rgb: np.ndarray, tiles: np.ndarray) -> None:
        """Read the names in ``tiles`` of ``rgb`` (both copied) as soon as the reader is free; ``key`` comes
        back with the names."""
        job = (key, np.array(rgb), np.array(tiles))
        with self._lock:
            self._waiting = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emowidgets-names", daemon=True)
                self._thread.start()

    def take(self) -> tuple[int, tuple[str, ...]] | None:
        """The latest finished read ``(key, names)`` not taken yet, else ``None``."""
        with self._lock:
            done, self._done = self._done, None
            return done

    def close(self, timeout: float = 30.0) -> None:
        """Drop the waiting frame and wait up to ``timeout`` s for the read in progress."""
        with self._lock:
            self._waiting = None
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                job, self._waiting = self._waiting, None
                self._running = job[0] if job is not None else None
                if job is None:
                    self._thread = None
                    return
            key, rgb, tiles = job
            try:
                names = self.reader.read(rgb, tiles)
            except Exception:  # an OCR failure costs this read only: the next one is tried as usual
                log.exception("reading the tiles' names failed")
                continue
            with self._lock:
                self._done = (key, names)

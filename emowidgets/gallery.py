"""A video call's tile grid over a stream, and the names read in its tiles: which grid each frame of a
:class:`~emowidgets.pipeline.Pipeline` uses, when each tile was last searched for its face, and each tile's name.

The grid is the teacher's (``"7x7"``) or found in the frames (``"auto"``, :func:`~emowidgets.layout.find_grid`):
checked every ``every_ms``, looked for again when it no longer holds, at once when the frame size changes, and
given up only after two looks in a row find none (a menu or a notification over the gallery is not a new layout).
Names (:mod:`emowidgets.names`) are read when a grid is found or changes and ``names_every_ms`` after each read,
on the reader's own thread for a stream; each tile's name is the vote of its last reads. Nothing here detects or
classifies a face.
"""

from __future__ import annotations

import collections
import logging

import numpy as np

from emowidgets.layout import GridLayout, find_grid, fixed_grid, grid_text, parse_grid
from emowidgets.names import VOTES, BackgroundReader, NameReader, NamesUnavailableError, vote

log = logging.getLogger("emowidgets.gallery")


class Gallery:
    """The tile grid and tile names of one stream.

    Args:
        grid: ``"auto"``, ``"none"`` or ``"RxC"`` (:func:`~emowidgets.layout.parse_grid`).
        every_ms: how often ``"auto"`` checks that the grid still holds.
        read_names: read each tile's name label (the ``names`` extra; without it, one log line and no reads).
        names_every_ms: how long after a read arrives the tiles are read again.

    Raises:
        OptionsError: a bad ``grid``.
    """

    def __init__(self, grid: str, every_ms: float, read_names: bool, names_every_ms: float) -> None:
        self._grid = parse_grid(grid)
        self._grid_changed = False
        self._every_ms = every_ms
        self._read = read_names
        self._names_every_ms = names_every_ms
        self.layout: GridLayout | None = None
        """The grid now in use (None: no grid, the whole frame is searched)."""
        self.tile_names: tuple[str, ...] = ()
        """The name read in each tile of ``layout``; ``()`` without a grid or before the first read."""
        self.tile_ms = np.zeros(0)
        """When each tile of ``layout`` was last searched for its face (written by the pipeline's tile search;
        ``-1e12`` for every tile of a new grid, so each is searched on the next frame)."""
        self._layout_ms = -1e12  # when the grid was last looked for
        self._misses = 0  # looks in a row that found no grid while one was in use
        self._names: BackgroundReader | None = None
        self._names_ms = -1e12  # when the tiles' names were last asked for or arrived
        self._key = 0  # counts the grids used: a read of an older grid's tiles is dropped
        self._reads: list[collections.deque[str]] = []  # each tile's last reads, for its vote

    @property
    def grid(self) -> str:
        """The grid setting as text; set from any thread: the next frame drops the grid in use.

        Raises (on assignment):
            OptionsError: another value than ``"auto"``, ``"none"`` or ``"RxC"``.
        """
        return grid_text(self._grid)

    @grid.setter
    def grid(self, setting: str) -> None:
        self._grid = parse_grid(setting)
        self._grid_changed = True

    @property
    def reading_names(self) -> bool:
        """Whether a read of the tiles' names is running or waiting on the names thread."""
        return self._names is not None and self._names.pending is not None

    def new_stream(self) -> None:
        """A new stream began (its timestamps went back): read the names again on its next gridded frame."""
        self._names_ms = -1e12

    def find(self, gray: np.ndarray, now_ms: float, timed: bool) -> GridLayout | None:
        """The grid for this frame (``gray``, ``(H, W)``); a frame without a timestamp (``timed`` false) is looked
        at afresh."""
        setting = self._grid
        if self._grid_changed:
            self._grid_changed = False
            self._use(None)
            self._layout_ms = -1e12
        if setting == "none":
            self.layout = None
            return None
        h, w = gray.shape
        resized = self.layout is not None and self.layout.frame_size != (w, h)
        if isinstance(setting, tuple):
            if self.layout is None or resized:
                self._use(fixed_grid(gray, *setting))
            return self.layout
        if not resized and timed and now_ms - self._layout_ms < self._every_ms:
            return self.layout
        self._layout_ms = now_ms
        if self.layout is not None and not resized and timed and self.layout.holds(gray):
            self._misses = 0
            return self.layout
        found = find_grid(gray)
        if found is None:
            self._misses += 1
            if self.layout is None or resized or self._misses >= 2 or not timed:
                self._use(None)
        elif self.layout is None or resized or not found.same_as(self.layout):
            self._use(found)
        else:
            self._misses = 0
        return self.layout

    def read_names(self, rgb: np.ndarray, layout: GridLayout, now_ms: float, timed: bool) -> None:
        """Names for the tiles of ``layout`` (if ``read_names``): a stream's frames are read on the background
        reader's thread (a 49-tile read takes seconds), the names applied on the first frame after; a frame
        without a timestamp is read here and now. Without the OCR extra, say so once and stop trying."""
        if not self._read:
            return
        if self._names is None:
            try:
                self._names = BackgroundReader(NameReader())
            except NamesUnavailableError as exc:
                log.warning("%s", exc)
                self._read = False
                return
        if not timed:
            self._vote(self._names.reader.read(rgb, layout.tiles))
            return
        done = self._names.take()
        if done is not None and done[0] == self._key:
            self._vote(done[1])
            self._names_ms = now_ms
        if self._names.pending != self._key and now_ms - self._names_ms >= self._names_every_ms:
            self._names_ms = now_ms
            self._names.submit(self._key, rgb, layout.tiles)

    def close(self, timeout: float) -> None:
        """Stop the names thread (if one was started), waiting up to ``timeout`` s."""
        if self._names is not None:
            self._names.close(timeout)

    def _vote(self, names: tuple[str, ...]) -> None:
        """Count one read of every tile: each tile's name is the vote of its last ``VOTES`` reads."""
        if len(self._reads) != len(names):
            self._reads = [collections.deque(maxlen=VOTES) for _ in names]
        for reads, name in zip(self._reads, names, strict=True):
            reads.append(name)
        self.tile_names = tuple(vote(reads) for reads in self._reads)

    def _use(self, layout: GridLayout | None) -> None:
        """Switch to a new grid (or none): every tile is searched (and its name read) on the next frame."""
        self.tile_names = ()
        self._reads = []
        self._key += 1
        self._names_ms = -1e12
        if layout is not None or self.layout is not None:
            log.info("gallery grid: %s", layout.label if layout is not None else "none")
        self.layout = layout
        self._misses = 0
        self.tile_ms = np.full(len(layout.tiles) if layout is not None else 0, -1e12)

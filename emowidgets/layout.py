"""The tile grid of a video-call gallery, found from the frame itself.

Zoom, Meet and Teams show a gallery as rows of equal tiles: a dark background, gaps of a few pixels (or
none), the grid centred in the window and a last row that may be short and centred. Each tile holds at most
one face, so a face detector run per tile sees it large, where a pass over the whole frame sees ~20-px
faces (:mod:`emowidgets.detect`).

:func:`find_grid` reads two profiles of the grey frame: rows (or columns) that are background from end to
end (a gap or a margin), and rows where the image changes from one row to the next across most of the
frame (the seam between two tiles without a gap). Their ends are the candidate tile edges; the grid is the
longest run of equal tiles spaced evenly between candidates, first as rows of tiles, then as tiles within
each row. A frame that is not a regular grid (a camera, a room photo, speaker view) gives ``None``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np

from emowidgets.boxes import pixel_spans
from emowidgets.errors import OptionsError

GRID_SETTINGS = "'auto', 'none' or rows x cols such as '7x7'"
_FIXED = re.compile(r"^\s*(\d{1,2})\s*[x\u00d7*]\s*(\d{1,2})\s*$", re.IGNORECASE)
MAX_SIDE = 10
"""At most this many rows or columns (calls show at most 7 x 7 per page; a few spare)."""


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """The call tiles of a frame.

    Attributes:
        tiles: ``(M, 4)`` float32 ``x, y, w, h`` in pixels, row by row, left to right.
        row_counts: tiles in each row, top to bottom (``(7,) * 6 + (5,)`` for 47 people on a 7-column grid).
        frame_size: ``(width, height)`` of the frame the grid was found in.
        source: ``"auto"`` (found in the frame) or ``"set"`` (the teacher's rows x cols).
    """

    tiles: np.ndarray
    row_counts: tuple[int, ...]
    frame_size: tuple[int, int]
    source: str = "auto"

    def same_as(self, other: GridLayout, tol: float = 4.0) -> bool:
        """Whether ``other`` is this grid (the same tiles within ``tol`` px): a new look found no change."""
        return (self.row_counts == other.row_counts and self.frame_size == other.frame_size
                and float(np.abs(self.tiles - other.tiles).max()) <= tol)

    @property
    def label(self) -> str:
        """``"7\u00d77"`` (a multiplication sign) for full rows, ``"7+7+5"``-style when a row is short."""
        counts = self.row_counts
        if len(set(counts)) == 1:
            return f"{len(counts)}\u00d7{counts[0]}"
        return "+".join(str(c) for c in counts)

    def holds(self, gray: np.ndarray) -> bool:
        """Whether this grid still fits the frame ``gray``, checked cheaply (1-2 ms where :func:`find_grid`
        takes 20-50): the 1-px lines just outside every tile (all but one) are still the call's background,
        and each tile's middle row is not. A grid without gaps (seams only) cannot be checked this way:
        ``False``, look again."""
        h, w = gray.shape
        if (w, h) != self.frame_size:
            return False
        bg = _background(gray)
        if bg is None:
            return False
        failed = 0
        for x0, y0, x1, y1 in pixel_spans(self.tiles, w, h).tolist():
            lines = [gray[y0 - 1, x0:x1]] if y0 >= 1 else []
            lines += [gray[y1, x0:x1]] if y1 < h else []
            lines += [gray[y0:y1, x0 - 1]] if x0 >= 1 else []
            lines += [gray[y0:y1, x1]] if x1 < w else []
            edge = np.concatenate(lines).astype(np.int16) if lines else np.zeros(0, np.int16)
            middle = gray[(y0 + y1) // 2, x0:x1].astype(np.int16)  # a tile holds something: video or a name
            failed += (bool(len(edge)) and (np.abs(edge - bg) <= _TOL).mean() < 0.8) or (
                (np.abs(middle - bg) <= _TOL).mean() > 0.5)
        return failed <= 1  # one tile may wear the active speaker's border outside it

    def tile_of(self, boxes: np.ndarray) -> np.ndarray:
        """Index of the tile holding each box centre ``(N,)``, -1 where no tile does."""
        out = np.full(len(boxes), -1, np.int64)
        if not len(boxes):
            return out
        cx = boxes[:, 0] + boxes[:, 2] / 2
        cy = boxes[:, 1] + boxes[:, 3] / 2
        t = self.tiles
        inside = ((cx[:, None] >= t[None, :, 0]) & (cx[:, None] < t[None, :, 0] + t[None, :, 2])
                  & (cy[:, None] >= t[None, :, 1]) & (cy[:, None] < t[None, :, 1] + t[None, :, 3]))
        hit = inside.any(axis=1)
        out[hit] = inside[hit].argmax(axis=1)
        return out


LOOK_SIZE = (8, 6)
"""Width and height of a tile's thumbnail (:func:`tile_looks`): a person's background and clothes, not a face."""


def tile_looks(rgb: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """A small colour thumbnail of each call tile ``(M, 8 * 6 * 3)`` float32 grey levels: who sits in a tile
    (their room, their clothes) changes little from frame to frame and much when the call moves people
    around, so the tracker can tell a re-ordered gallery from people moving (:mod:`emowidgets.tracking`)."""
    import cv2

    out = np.zeros((len(tiles), LOOK_SIZE[0] * LOOK_SIZE[1] * 3), np.float32)
    h, w = rgb.shape[:2]
    for k, (x0, y0, x1, y1) in enumerate(pixel_spans(tiles, w, h).tolist()):
        if x1 - x0 >= LOOK_SIZE[0] and y1 - y0 >= LOOK_SIZE[1]:
            out[k] = cv2.resize(rgb[y0:y1, x0:x1], LOOK_SIZE, interpolation=cv2.INTER_AREA).ravel()
    return out


def parse_grid(setting: str) -> tuple[int, int] | str:
    """``"auto"``, ``"none"`` or ``(rows, cols)`` from a teacher's setting such as ``"7x7"`` or ``"5 X 6"``.

    Raises:
        OptionsError: anything else.
    """
    text = str(setting).strip().lower()
    if text in ("auto", "none"):
        return text
    m = _FIXED.match(text)
    if m:
        rows, cols = int(m.group(1)), int(m.group(2))
        if 1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE:
            return rows, cols
    raise OptionsError(f"gallery grid must be {GRID_SETTINGS} (at most {MAX_SIDE} a side), not {setting!r}")


def grid_text(setting: tuple[int, int] | str) -> str:
    """A parsed setting written back: ``"auto"``, ``"none"`` or ``"7x7"``."""
    return setting if isinstance(setting, str) else f"{setting[0]}x{setting[1]}"


def fixed_grid(gray: np.ndarray, rows: int, cols: int) -> GridLayout:
    """The teacher's ``rows x cols``: the frame's content (inside any background margin) cut into equal tiles."""
    h, w = gray.shape
    bg = _background(gray)
    x0, y0, x1, y1 = 0, 0, w, h
    if bg is not None:
        content = np.abs(gray.astype(np.int16) - bg) > _TOL
        cols_on, rows_on = np.flatnonzero(content.mean(axis=0) > 0.02), np.flatnonzero(content.mean(axis=1) > 0.02)
        if len(cols_on) and len(rows_on):
            x0, x1, y0, y1 = int(cols_on[0]), int(cols_on[-1]) + 1, int(rows_on[0]), int(rows_on[-1]) + 1
    tw, th = (x1 - x0) / cols, (y1 - y0) / rows
    tiles = np.array([[x0 + c * tw, y0 + r * th, tw, th] for r in range(rows) for c in range(cols)], np.float32)
    return GridLayout(tiles, (cols,) * rows, (w, h), "set")


_TOL = 6
"""Grey levels within which a pixel is the background colour (JPEG keeps flat areas within 2-3)."""


def find_grid(gray: np.ndarray, *, min_tiles: int = 2, min_cover: float = 0.4) -> GridLayout | None:
    """The call's tile grid in a grey ``(H, W)`` uint8 frame, or ``None`` if the frame is not a gallery.

    ``min_tiles``: fewer tiles than this is not a gallery. ``min_cover``: the tiles must cover at least this
    share of the frame.
    """
    h, w = gray.shape
    if h < 32 or w < 32:
        return None
    g = gray.astype(np.int16)
    bg = _background(gray)
    flat = (np.abs(g - bg) <= _TOL) if bg is not None else np.zeros(g.shape, bool)
    dy = np.abs(np.diff(g, axis=0)) > _STEP  # (H-1, W): the image changes from row y to y+1
    dx = np.abs(np.diff(g, axis=1)) > _STEP  # (H, W-1)
    row_bands = _fit_segments(*_candidates(flat.mean(axis=1), dy.mean(axis=1)), length=h)
    if row_bands is None:
        return None
    if bg is not None:
        row_bands = _extend(row_bands, 1 - flat.mean(axis=1), h)
    rows: list[tuple[int, int, list[tuple[int, int]]]] = []
    for y0, y1 in row_bands:
        cols = _fit_segments(*_candidates(flat[y0:y1].mean(axis=0), dx[y0:y1].mean(axis=0)), length=w)
        rows.append((y0, y1, cols or []))
    ref = max(rows, key=lambda r: len(r[2]))[2]
    if bg is not None and len(ref) >= 2:  # every row on the fullest row's tiles, or on them shifted half a tile
        rows = [(y0, y1, _on_comb(ref, 1 - flat[y0:y1].mean(axis=0))) for y0, y1, _ in rows]
    if not all(cols for *_, cols in rows):
        return None
    widths = [x1 - x0 for *_, cols in rows for x0, x1 in cols]
    if max(widths) - min(widths) > max(3, 0.03 * max(widths)):  # tiles of one call are all the same size
        return None
    tiles = np.array([[x0, y0, x1 - x0, y1 - y0] for y0, y1, cols in rows for x0, x1 in cols], np.float32)
    aspect = tiles[:, 2] / tiles[:, 3]
    if len(tiles) < min_tiles or not (aspect.min() >= 0.5 and aspect.max() <= 2.5):
        return None
    if (tiles[:, 2] * tiles[:, 3]).sum() < min_cover * h * w:
        return None
    return GridLayout(tiles, tuple(len(cols) for *_, cols in rows), (w, h))


def _extend(segs: list[tuple[int, int]], content: np.ndarray, length: int) -> list[tuple[int, int]]:
    """``segs`` continued at their pitch before and after while the lines there hold content (``content``: the
    share of each line that is not background): a short last row of one tile steps too little to be a
    candidate, but sits where the next row belongs."""
    if len(segs) < 2:
        return segs
    size, pitch = segs[0][1] - segs[0][0], segs[1][0] - segs[0][0]
    out = list(segs)
    while out[-1][0] + pitch + size <= length and content[out[-1][0] + pitch: out[-1][0] + pitch + size].mean() > 0.1:
        out.append((out[-1][0] + pitch, out[-1][0] + pitch + size))
    while out[0][0] - pitch >= 0 and content[out[0][0] - pitch: out[0][0] - pitch + size].mean() > 0.1:
        out.insert(0, (out[0][0] - pitch, out[0][0] - pitch + size))
    return out


def _on_comb(ref: list[tuple[int, int]], content: np.ndarray) -> list[tuple[int, int]]:
    """The tiles of one row of a call with gaps, given the fullest row ``ref``: the places of ``ref``'s comb
    (or of the comb shifted half a pitch: a short row is centred) that hold content, choosing the comb whose
    tiles hold content and whose gaps hold none. ``content``: the share of each column that is not background."""
    size, pitch = ref[0][1] - ref[0][0], ref[1][0] - ref[0][0]
    n = len(content)
    best: tuple[float, list[tuple[int, int]]] = (-1.0, [])
    for shift in (0.0, 0.5):
        start = ref[0][0] + shift * pitch
        start -= pitch * np.floor(start / pitch)
        tiles = [(round(x), round(x) + size) for x in np.arange(start, n - size + 1, pitch)]
        tiles = [t for t in tiles if content[t[0]: t[1]].mean() >= 0.5]
        gaps = [content[a[1]: b[0]].mean() for a, b in itertools.pairwise(tiles) if b[0] > a[1]]
        score = sum(content[a:b].mean() for a, b in tiles) + sum(1 - g for g in gaps)
        if score > best[0]:
            best = (score, tiles)
    return best[1]


_STEP = 14
"""A change of more than this many grey levels between neighbouring lines is part of a seam."""


def _background(gray: np.ndarray) -> int | None:
    """The call's background grey: the commonest value on the frame's outer 2-px ring, if it holds a third of
    the ring (gaps and margins touch the border; a gallery without either has no background)."""
    ring = np.concatenate([gray[:2].ravel(), gray[-2:].ravel(), gray[:, :2].ravel(), gray[:, -2:].ravel()])
    counts = np.convolve(np.bincount(ring, minlength=256), np.ones(2 * 2 + 1), "same")  # within +-2 levels
    value = int(counts.argmax())
    return value if counts[value] >= len(ring) / 3 else None


def _candidates(flat: np.ndarray, change: np.ndarray, share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Candidate tile starts and ends (line indices; an end is one past a tile's last line) from the share
    of each line that is background (``flat``, ``(n,)``) and the share that changes into the next line
    (``change``, ``(n - 1,)``): a tile starts where background gives way to content (or at a seam) and ends
    where it gives back."""
    n = len(flat)
    prev = np.concatenate([[1.0], flat])  # prev[i]: line i - 1 (outside the frame counts as background)
    nxt = np.concatenate([flat, [1.0]])  # nxt[i]: line i
    seam = np.zeros(n + 1)
    seam[1:n] = change  # seam[i]: between line i - 1 and i
    seam *= 1 - np.maximum(prev, nxt)  # only between two tiles: beside a gap the step itself says it
    start = np.maximum(np.clip(prev - nxt, 0, None), seam)
    end = np.maximum(np.clip(nxt - prev, 0, None), seam)
    return _peaks(start, share), _peaks(end, share)


def _peaks(score: np.ndarray, share: float, radius: int = 2) -> np.ndarray:
    """Indices where ``score`` reaches ``share`` and is the largest within ``radius``."""
    padded = np.pad(score, radius)
    window = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1)
    idx = np.flatnonzero((score >= share) & (score >= window))
    if len(idx) > 1:  # a plateau peaks once
        idx = idx[np.concatenate([[True], np.diff(idx) > radius])]
    return idx


def _fit_segments(starts: np.ndarray, ends: np.ndarray, length: int, tol: int = 2) -> list[tuple[int, int]] | None:
    """The best run of equal, evenly spaced segments (tiles) along a line of ``length``: each has its start
    among the candidate ``starts`` or its end among the ``ends`` (within ``tol``; a tile whose edge is as dark
    as the background shows only one of them), and the run scores a point per matched edge. ``None`` if no
    segment fits."""
    if not len(starts) or not len(ends):
        return None

    def near(pool: np.ndarray, x: float) -> int | None:
        i = int(np.searchsorted(pool, x))
        best = min((abs(int(pool[j]) - x), int(pool[j])) for j in (i - 1, i) if 0 <= j < len(pool))
        return best[1] if best[0] <= tol else None

    def walk(s0: int, size: int, pitch: int, direction: int) -> tuple[list[tuple[int, int]], int]:
        """Tiles after (``direction`` 1) or before (-1) the one at ``s0``, and the edges that matched; one tile
        with neither edge is bridged when the next one matches."""
        segs: list[tuple[int, int]] = []
        points, at, missing = 0, s0, 0
        while len(segs) < MAX_SIDE:
            at += direction * pitch
            if at < -tol or at + size > length + tol:
                break
            s, e = near(starts, at), near(ends, at + size)
            if s is None and e is None:
                missing += 1
                if missing > 1:
                    break
                continue
            at = s if s is not None else e - size  # type: ignore[operator]
            if missing:  # the bridged tile sits halfway
                segs.append((at - direction * pitch, at - direction * pitch + size))
                missing = 0
            segs.append((at, at + size))
            points += (s is not None) + (e is not None)
        return sorted(segs), points

    best: list[tuple[int, int]] = []
    best_score = (0, 0)
    min_len = max(16, length // (MAX_SIDE + 2))
    for s0 in starts:
        for e0 in ends[(ends - s0) >= min_len]:
            size = int(e0 - s0)
            nexts = starts[(starts >= e0) & (starts <= e0 + max(12, size // 10))]
            for s1 in nexts[:1]:  # the nearest start after the first tile sets the gap
                pitch = int(s1 - s0)
                left, lp = walk(int(s0), size, pitch, -1)
                right, rp = walk(int(s0), size, pitch, 1)
                segs = [*left, (int(s0), int(e0)), *right]
                score = (2 + lp + rp, size)
                if len(segs) >= 2 and score > best_score:
                    best, best_score = segs, score
            if not best:  # a lone tile (one per row, or one row)
                best, best_score = [(int(s0), int(e0))], (2, size)
    return best or None

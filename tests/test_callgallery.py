"""Call-like galleries (benchmarks/callgallery.py): tile geometry, the truth against the pixels, the reorder,
the grid a call picks, scoring, and a streamed y4m. Built from the real clips and photos in ../shared."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from callgallery import STYLES, build_call, call_grid, call_layout, write_call_video


@pytest.fixture(scope="module")
def zoom49():
    """49 participants at 1080p, 5 cameras off, reordered from frame 3."""
    return build_call(49, (1920, 1080), style="zoom", camera_off=5, frames=5, fps=5, reorder_at=3, seed=1)


@pytest.fixture(scope="module")
def meet47():
    """47 participants at 720p in Meet's style: a 7-column grid with a short last row."""
    return build_call(47, (1280, 720), style="meet", camera_off=4, frames=2, fps=5)


def test_call_grid_maximises_16_9_tiles():
    for size in ((1920, 1080), (1280, 720)):
        assert call_grid(25, size) == (5, 5)
        assert call_grid(36, size) == (6, 6)
        assert call_grid(49, size) == (7, 7)
        assert call_grid(47, size) == (7, 7)
    assert call_grid(1, (1280, 720)) == (1, 1)
    assert call_grid(2, (1280, 720)) == (2, 1)
    assert call_grid(3, (1920, 1080)) == (2, 2)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_count_fits(style):
    for size in ((1280, 720), (1920, 1080)):
        for n in range(1, 50):
            tiles, rows = call_layout(n, size, STYLES[style])
            assert len(tiles) == sum(rows) == n and rows[-1] <= rows[0] and len(set(rows[:-1])) <= 1
            assert (tiles[:, :2] >= STYLES[style].margin).all()
            assert (tiles[:, 0] + tiles[:, 2] <= size[0]).all() and (tiles[:, 1] + tiles[:, 3] <= size[1]).all()


@pytest.mark.parametrize("name", ["zoom49", "meet47"])
def test_tile_geometry(name, request):
    call = request.getfixturevalue(name)
    style = STYLES[call.style]
    h, w = call.frames.shape[1:3]
    tiles = call.tiles
    n = len(call.names)
    assert tiles.shape == (n, 4) and sum(call.row_counts) == n
    assert len(np.unique(tiles[:, 2])) == 1 and len(np.unique(tiles[:, 3])) == 1  # equal tiles
    tw, th = tiles[0, 2:]
    assert abs(tw / th - 16 / 9) < 0.02
    assert (tiles[:, 0] >= style.margin).all() and (tiles[:, 1] >= style.margin).all()
    assert (tiles[:, 0] + tw <= w - style.margin).all() and (tiles[:, 1] + th <= h - style.margin).all()
    start = 0
    ys = []
    for k in call.row_counts:
        row = tiles[start:start + k]
        start += k
        assert len(np.unique(row[:, 1])) == 1
        assert np.all(np.diff(row[:, 0]) == tw + style.gap)  # the gap between neighbours
        left, right = row[0, 0], w - (row[-1, 0] + tw)
        assert abs(left - right) <= 1  # every row centred, the short last one too
        ys.append(row[0, 1])
    assert np.all(np.diff(ys) == th + style.gap)
    assert abs(ys[0] - (h - ys[-1] - th)) <= 1  # the grid centred vertically


def test_short_last_row_is_centred(meet47):
    assert meet47.row_counts == (7,) * 6 + (5,)
    last, full = meet47.tiles[-5:], meet47.tiles[:7]
    tw = meet47.tiles[0, 2]
    assert abs(last[0, 0] - (full[0, 0] + (tw + STYLES["meet"].gap))) <= 1  # shifted in by one seat


def _tile(call, t, j, inset=6):
    x, y, w, h = call.tiles[j].astype(int)
    return call.frames[t, y + inset:y + h - inset, x + inset:x + w - inset].astype(int)


@pytest.mark.parametrize("name", ["zoom49", "meet47"])
def test_truth_matches_pixels(name, request):
    call = request.getfixturevalue(name)
    style = STYLES[call.style]
    t = 0
    assert 0 < call.faces < len(call.names) and (~call.has_face).sum() == len(call.names) - call.faces
    off = np.flatnonzero(~call.has_face)
    assert not np.array_equal(off, np.arange(len(call.names) - len(off), len(call.names)))  # not all at the end
    for j, p in enumerate(call.seat[t]):
        tile = _tile(call, t, j)
        flat = (np.abs(tile - np.array(style.off_tile)).max(-1) <= 2).mean()
        if call.has_face[p]:
            assert flat < 0.05, (j, p, flat)  # a face, not a plain tile
            assert tile.std() > 20
        else:
            assert flat > 0.8, (j, p, flat)  # plain except its text (and initials circle)
    # The background in a gap and in a margin.
    x, y, w, h = call.tiles[0].astype(int)
    assert (call.frames[t, y + h // 2, x + w + style.gap // 2] == style.background).all()
    assert (call.frames[t, 1, 1] == style.background).all()


def test_reorder_moves_participants_and_pixels(zoom49):
    call = zoom49
    before, after = call.seat[2], call.seat[3]
    assert (call.seat[:3] == np.arange(49)).all() and (call.seat[3:] == after).all()
    assert sorted(after) == list(range(49)) and (before != after).all()  # a permutation, everyone moved
    # A photo participant (static pixels, label included) shows the same tile in its new seat.
    photo = next(p for p in range(49) if call.has_face[p] and np.array_equal(_tile(call, 0, p), _tile(call, 1, p)))
    old, new = int(np.flatnonzero(before == photo)[0]), int(np.flatnonzero(after == photo)[0])
    assert old != new
    assert np.array_equal(_tile(call, 2, old), _tile(call, 3, new))
    assert not np.array_equal(_tile(call, 3, old), _tile(call, 3, new))


def test_repeated_sources_look_different(zoom49):
    """49 participants reuse 14 faces; no two face tiles are the same picture."""
    tiles = [_tile(zoom49, 0, j) for j in range(49) if zoom49.has_face[zoom49.seat[0, j]]]
    small = np.stack([t[::8, ::8].reshape(-1) for t in tiles]).astype(float)
    d = np.abs(small[:, None] - small[None]).mean(-1)
    assert d[~np.eye(len(tiles), dtype=bool)].min() > 5


def test_speaker_border_moves():
    call = build_call(9, (1280, 720), style="teams", frames=12, fps=5, seed=3)
    assert len(set(call.speaker[:5])) == 1 and call.speaker[5] != call.speaker[4]
    style = STYLES["teams"]
    for t in (0, 5):
        j = int(np.flatnonzero(call.seat[t] == call.speaker[t])[0])
        x, y, _, h = call.tiles[j].astype(int)
        assert (np.abs(call.frames[t, y + h // 2, x].astype(int) - style.speaker) <= 2).all()


def test_score_counts_hand_made_boxes(zoom49):
    call = zoom49
    t = 4  # after the reorder: the seats are not the identity
    on = [j for j in range(49) if call.has_face[call.seat[t, j]]]
    off = [j for j in range(49) if not call.has_face[call.seat[t, j]]]

    def box(j, dx=0.0):
        x, y, w, h = call.tiles[j]
        return [x + w * (0.3 + dx), y + h * 0.2, w * 0.3, h * 0.5]

    x, y, w, _ = call.tiles[0]
    gap = [x + w + STYLES["zoom"].gap / 2 - 10, y + 20, 20, 30]  # its centre in the gap right of tile 0
    boxes = np.array([box(on[0]), box(on[0], 0.1), box(on[1]), box(on[2]), box(off[0]), gap, [0, 0, 3, 3]])
    who = call.participant_at(t, boxes)
    assert who[0] == who[1] == call.seat[t, on[0]] and who[4] == call.seat[t, off[0]]
    assert who[5] == -1 and who[6] == -1
    assert call.score(t, boxes) == (3, 3, 1)
    assert call.score(t, np.zeros((0, 4))) == (0, 0, 0)


def test_write_call_video_y4m(tmp_path):
    out = tmp_path / "call.y4m"
    call = write_call_video(25, (1280, 720), out, seconds=1.0, fps=5, style="teams", camera_off=3, reorder_at=2)
    assert call.frames.shape == (0, 720, 1280, 3) and call.seat.shape == (5, 25) and call.faces == 22
    data = out.read_bytes()
    header = data[:data.index(b"\n") + 1]
    assert header.startswith(b"YUV4MPEG2 ") and b" W1280 " in header and b" H720 " in header
    assert data.count(b"FRAME\n") == 5
    assert len(data) == len(header) + 5 * (len(b"FRAME\n") + 1280 * 720 * 3 // 2)  # yuv420p

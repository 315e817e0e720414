"""The call's tile grid (emowidgets.layout) on call-like galleries built from the real clips and photos, and the
gallery pipeline that searches each call tile on its own (issue 21)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import IMAGES, ROOT

from emowidgets.decode import decode
from emowidgets.errors import OptionsError
from emowidgets.layout import find_grid, fixed_grid, parse_grid
from emowidgets.pipeline import Pipeline
from emowidgets.preprocess import to_gray
from emowidgets.sources import pipeline_options

sys.path.insert(0, str(ROOT / "benchmarks"))
from callgallery import build_call

CASES = [(style, size, n, off) for style in ("zoom", "meet", "teams") for size in ((1280, 720), (1920, 1080))
         for n, off in ((49, 5), (47, 4), (36, 3), (25, 2), (7, 1), (4, 0), (2, 0))]


@pytest.mark.parametrize(("style", "size", "n", "off"), CASES,
                         ids=[f"{s}-{z[1]}p-{n}" for s, z, n, _ in CASES])
def test_grid_is_found_exactly(style, size, n, off):
    """Every tile within 3 px, short centred last rows (47 -> 7x6 + 5, 7 -> 3 + 3 + 1) and camera-off tiles
    included, in all three call styles."""
    call = build_call(n, size, style=style, camera_off=off, frames=1)
    layout = find_grid(to_gray(call.frames[0]))
    assert layout is not None, call.row_counts
    assert layout.row_counts == call.row_counts
    assert np.abs(layout.tiles - call.tiles).max() <= 3
    assert layout.frame_size == size and layout.source == "auto"


def test_grid_label_names_rows_and_short_rows():
    call = build_call(47, (1920, 1080), frames=1)
    assert find_grid(to_gray(call.frames[0])).label == "7+7+7+7+7+7+5"
    call = build_call(49, (1920, 1080), frames=1)
    assert find_grid(to_gray(call.frames[0])).label == "7\N{MULTIPLICATION SIGN}7"


@pytest.mark.parametrize("photo", ["group_5_people.jpg", "single_biden_neutral.jpg", "single_astronaut.png",
                                   "single_man_smiling.jpg", "single_obama_smiling.jpg"])
def test_a_photo_or_camera_frame_is_no_grid(photo):
    assert find_grid(to_gray(decode((IMAGES / photo).read_bytes()))) is None


def test_flat_frame_is_no_grid():
    assert find_grid(np.full((720, 1280), 40, np.uint8)) is None
    assert find_grid(np.zeros((20, 20), np.uint8)) is None


def test_teachers_grid_cuts_the_content_inside_the_margins():
    call = build_call(36, (1920, 1080), style="meet", frames=1)
    fixed = fixed_grid(to_gray(call.frames[0]), 6, 6)
    assert fixed.source == "set" and fixed.row_counts == (6,) * 6
    # the equal cut of the content lands within a gap's width of each real tile
    assert np.abs(fixed.tiles[:, :2] - call.tiles[:, :2]).max() <= 12


@pytest.mark.parametrize(("text", "parsed"), [("auto", "auto"), (" None ", "none"), ("7x7", (7, 7)),
                                              ("5 \N{MULTIPLICATION SIGN} 6", (5, 6)), ("3X4", (3, 4))])
def test_grid_settings(text, parsed):
    assert parse_grid(text) == parsed


@pytest.mark.parametrize("bad", ["12x12", "0x3", "seven", "", "7x", "3x4x5"])
def test_bad_grid_setting_says_what_is_allowed(bad):
    with pytest.raises(OptionsError, match="gallery grid must be 'auto', 'none' or rows x cols"):
        parse_grid(bad)


@pytest.fixture(scope="module")
def gallery_pipeline():
    with Pipeline.create_from_options(pipeline_options("gallery", "fast"), warmup=False) as p:
        p.classifier.warmup(background=False)
        yield p


def run(pipeline: Pipeline, frames: np.ndarray, step_ms: float = 200.0) -> list:
    pipeline.tracker.reset()
    pipeline.grid = "auto"
    return [pipeline.process_array(f, seq=i, timestamp_ms=1 + round(i * step_ms)) for i, f in enumerate(frames)]


def test_49_students_found_in_their_tiles_and_none_on_camera_off_tiles(gallery_pipeline):
    call = build_call(49, (1920, 1080), style="teams", camera_off=5, frames=6)
    results = run(gallery_pipeline, call.frames)
    for t, r in enumerate(results):
        found, extra, off = call.score(t, r.boxes)
        assert (found, extra, off) == (call.faces, 0, 0), t
        assert r.grid == "7\N{MULTIPLICATION SIGN}7" and r.grid_source == "auto" and len(r.tiles) == 49
        assert (r.face_tiles >= 0).all() and len(set(r.face_tiles.tolist())) == len(r.boxes)
        assert not call.has_face[call.seat[t][r.empty_tiles]].any()  # an empty tile is a camera-off tile


def test_ids_follow_students_through_a_reorder(gallery_pipeline):
    """Half-way every participant moves to another tile; the tile's look, not its place, keeps the id."""
    call = build_call(25, (1280, 720), style="zoom", camera_off=2, frames=10, reorder_at=5)
    results = run(gallery_pipeline, call.frames)
    before = dict(zip(call.participant_at(4, results[4].boxes).tolist(), results[4].track_ids.tolist(), strict=True))
    after = dict(zip(call.participant_at(9, results[9].boxes).tolist(), results[9].track_ids.tolist(), strict=True))
    kept = sum(before[p] == after.get(p) for p in before)
    assert kept >= 0.8 * len(before), (kept, len(before))


def test_grid_setting_none_falls_back_to_the_whole_frame(gallery_pipeline):
    call = build_call(25, (1280, 720), frames=1)
    gallery_pipeline.grid = "none"
    try:
        r = gallery_pipeline.process_array(call.frames[0])
        assert r.grid_source == "none" and not len(r.tiles) and (r.face_tiles == -1).all()
        assert len(r.boxes) >= 15  # today's 3x3 whole-frame search still finds most faces
        gallery_pipeline.grid = "5x5"
        r = gallery_pipeline.process_array(call.frames[0])
        assert r.grid_source == "set" and r.grid == "5\N{MULTIPLICATION SIGN}5"
        assert call.score(0, r.boxes)[0] == call.faces
        with pytest.raises(OptionsError, match="not '9'"):
            gallery_pipeline.grid = "9"
        assert gallery_pipeline.grid == "5x5"
    finally:
        gallery_pipeline.grid = "auto"


@pytest.mark.parametrize("style", ["zoom", "meet", "teams"])
def test_grid_holds_while_the_call_is_unchanged_and_not_once_people_leave(style):
    call = build_call(49, (1920, 1080), style=style, camera_off=4, frames=6, fps=2)  # the speaker border moves
    layout = find_grid(to_gray(call.frames[0]))
    assert all(layout.holds(to_gray(f)) for f in call.frames)
    for n in (48, 47, 42, 36):
        other = build_call(n, (1920, 1080), style=style, camera_off=2, frames=1).frames[0]
        assert not layout.holds(to_gray(other)), n
    assert not layout.holds(to_gray(call.frames[0])[:540])  # another frame size


def test_pipeline_finds_the_new_grid_when_people_leave(gallery_pipeline):
    """49 -> 47 participants mid-stream: the short centred last row is in use within a second."""
    big = build_call(49, (1920, 1080), camera_off=4, frames=3, fps=5)
    small = build_call(47, (1920, 1080), camera_off=4, frames=8, fps=5)
    results = run(gallery_pipeline, np.concatenate([big.frames, small.frames]))
    assert results[2].grid == "7\N{MULTIPLICATION SIGN}7"
    assert results[-1].grid == "7+7+7+7+7+7+5"
    found, extra, off = small.score(7, results[-1].boxes)
    assert (found, extra, off) == (small.faces, 0, 0)

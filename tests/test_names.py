"""Names read from generated call galleries (the optional 'names' extra: the OCR tests skip without it)."""

from __future__ import annotations

import dataclasses
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

from emowidgets.names import clean_name, join_split_words, vote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_clean_name_fixes_what_ocr_confuses():
    assert clean_name("Arjun  Venkataraman-lyer") == "Arjun Venkataraman-Iyer"
    assert clean_name("lngrid Johansson…") == "Ingrid Johansson"
    assert clean_name("Maria de la Cruz") == "Maria de la Cruz"


def label(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``text`` drawn white on a dark pill as a call labels a tile (DejaVu Sans 14 px, x1.5 as the reader
    enlarges it), and the line's box."""
    from callgallery import _font
    from PIL import Image, ImageDraw

    font = _font(21)
    w = int(font.getlength(text)) + 20
    im = Image.new("RGB", (w, 34), (30, 30, 30))
    ImageDraw.Draw(im).text((10, 17), text, fill=(255, 255, 255), font=font, anchor="lm")
    return np.asarray(im), np.array([[0, 0], [w, 0], [w, 34], [0, 34]], np.float32)


def test_a_space_the_pixels_do_not_show_is_taken_out():
    assert join_split_words("Rajesh Kum ar", *label("Rajesh Kumar")) == "Rajesh Kumar"
    assert join_split_words("Isabella G arcía", *label("Isabella García")) == "Isabella García"
    assert join_split_words("Maria de la Cruz", *label("Maria de la Cruz")) == "Maria de la Cruz"
    assert join_split_words("john smith", *label("john smith")) == "john smith"


def test_vote_keeps_the_most_frequent_read_and_the_latest_on_a_tie():
    assert vote(["Ana Souza", "Ana Sooza", "Ana Souza"]) == "Ana Souza"
    assert vote(["Ana Souza", "Ana Sooza"]) == "Ana Sooza"
    assert vote(["", "Chen Wei", ""]) == "Chen Wei"
    assert vote(["", ""]) == ""


def test_drawn_labels_are_the_truth():
    """A font without a glyph for a letter draws its base letter, and the benchmark's truth is what is drawn."""
    from callgallery import _font, build_call, drawable

    assert drawable("Isabella García", _font(14, family="aileron")) == "Isabella Garcia"
    assert drawable("Isabella García", _font(14, family="dejavu")) == "Isabella García"
    call = build_call(49, (1920, 1080), frames=1, font="aileron")
    assert "Jakob Muller" in call.shown and "Jakob Müller" in call.names


@pytest.mark.slow
@pytest.mark.parametrize("style", ["zoom", "teams"])
def test_names_are_read_from_a_49_tile_gallery(style):
    pytest.importorskip("rapidocr", reason="the 'names' extra (rapidocr) is not installed")
    from callgallery import build_call

    from emowidgets.names import NameReader

    call = build_call(49, (1920, 1080), style=style, camera_off=0, frames=1, seed=3)
    read = NameReader().read(call.frames[0], call.tiles)
    want = [clean_name(call.shown[p]) for p in call.seat[0]]
    assert np.mean([r == w for r, w in zip(read, want, strict=True)]) >= 0.9


def test_the_reader_needs_no_network(monkeypatch):
    """The OCR models come from the rapidocr wheel: with every connection refused, a reader is made and reads."""
    pytest.importorskip("rapidocr", reason="the 'names' extra (rapidocr) is not installed")
    from callgallery import build_call

    from emowidgets.names import NameReader

    def refuse(*_: object) -> None:
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    call = build_call(4, (1280, 720), style="teams", frames=1, seed=2)
    assert NameReader().read(call.frames[0], call.tiles) == tuple(clean_name(call.shown[p]) for p in call.seat[0])


@pytest.fixture(scope="module")
def named_stream():
    """A 16-tile Zoom gallery streamed through a gallery pipeline that reads names, frame after frame on this
    thread until the names arrive (read on the reader's thread meanwhile), then 5 frames more."""
    pytest.importorskip("rapidocr", reason="the 'names' extra (rapidocr) is not installed")
    from callgallery import build_call

    from emowidgets.pipeline import Pipeline
    from emowidgets.sources import entry_options

    call = build_call(16, (1280, 720), style="zoom", frames=4, fps=5, seed=1)
    options = dataclasses.replace(entry_options("gallery", "fast"), read_names=True)
    results, reading = [], []  # reading: a names read was running or waiting as the frame went in
    with Pipeline.create_from_options(options, warmup=False) as pipeline:
        def step() -> bool:
            i = len(results)
            reading.append(pipeline.reading_names)
            results.append(pipeline.process_array(call.frames[i % len(call.frames)], seq=i,
                                                  timestamp_ms=200 * (i + 1)))
            return bool(results[-1].tile_names)

        wait_for(step, timeout=300, what="the tiles' names")
        for _ in range(5):
            step()
    return call, results, reading


@pytest.mark.slow
def test_names_are_read_beside_the_frame_loop(named_stream):
    """The frame that finds the grid returns before its names are read: frames go on while the read runs, and
    the names come with a later frame, right."""
    call, results, reading = named_stream
    gridded = [i for i, r in enumerate(results) if len(r.tiles) == 16]
    named = next(i for i, r in enumerate(results) if r.tile_names)
    assert gridded and not results[gridded[0]].tile_names
    assert sum(reading[gridded[0] + 1:named + 1]) >= 2  # frames processed while the read ran
    want = [clean_name(call.shown[p]) for p in call.seat[0]]
    assert np.mean([r == w for r, w in zip(results[-1].tile_names, want, strict=True)]) >= 0.9


@pytest.mark.slow
def test_call_names_reach_the_class_view(named_stream):
    """Each face in the class view is named after its tile's label, and a typed name stays the teacher's."""
    from emowidgets.classview import ClassView

    call, results, _ = named_stream
    view = ClassView()
    for i, r in enumerate(results[:-3]):
        view.update(r, now=100 + 0.2 * i)
    last = results[-4]
    by_tile = {int(t): str(tid) for tid, t in zip(last.track_ids.tolist(), last.face_tiles.tolist(), strict=True)}
    want = {by_tile[j]: clean_name(call.shown[p]) for j, p in enumerate(call.seat[0]) if j in by_tile}
    assert len(want) >= 12
    assert np.mean([view.names.get(tid) == name for tid, name in want.items()]) >= 0.9
    typed = next(iter(want))
    view.names = {**view.names, typed: "Teacher's pick"}
    for i, r in enumerate(results[-3:]):
        view.update(r, now=200 + 0.2 * i)
    assert view.names[typed] == "Teacher's pick"
    view.close()

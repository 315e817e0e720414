"""Names read from generated call galleries (the optional 'names' extra: skipped without it)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from emowidgets.names import clean_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_clean_name_fixes_what_ocr_confuses():
    assert clean_name("Arjun  Venkataraman-lyer") == "Arjun Venkataraman-Iyer"
    assert clean_name("lngrid Johansson…") == "Ingrid Johansson"
    assert clean_name("Maria de la Cruz") == "Maria de la Cruz"


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

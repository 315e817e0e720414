"""Shared fixtures: paths to the real assets in ../shared and session-wide pipeline pieces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(__import__("os").environ.get("EMOWIDGETS_SHARED", ROOT.parent / "shared"))
ASSETS = SHARED / "assets"
IMAGES = ASSETS / "images"
CLIPS = ASSETS / "clips"
FER = SHARED / "data" / "fer2013.npz"


def video_frames(path: Path, size: tuple[int, int] | None = None, every: int = 1) -> np.ndarray:
    """All (or every n-th) frames of a clip as RGB uint8 ``(T, H, W, 3)``, decoded by ffmpeg."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = size or tuple(int(v) for v in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={w}:{h}", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)[::every]


@pytest.fixture
def pipeline():
    """A fresh pipeline per test (cheap once the first has compiled): no tracker, follower, budget, ladder or
    clock state carries from one test to the next."""
    from emowidgets.pipeline import Pipeline

    with Pipeline.create_from_options(warmup=False) as p:
        yield p


@pytest.fixture(scope="session")
def classifier():
    from emowidgets.infer import EmotionClassifier

    return EmotionClassifier.create_from_options()


# Real-browser fixtures, one JupyterLab and one Chromium per test module (imports kept lazy: playwright is heavy).
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from browser import JupyterLab

    with JupyterLab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    """Chromium with the fake camera playing single_face.mp4."""
    from browser import launch_chromium, make_y4m

    y4m = make_y4m(CLIPS / "single_face.mp4", tmp_path_factory.mktemp("cam") / "single_face.y4m")
    b = launch_chromium(playwright, y4m)
    yield b
    b.close()

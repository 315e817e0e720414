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


@pytest.fixture(scope="session")
def pipeline():
    from emowidgets.pipeline import Pipeline

    with Pipeline.create_from_options(warmup=False) as p:
        yield p


@pytest.fixture(scope="session")
def classifier():
    from emowidgets.infer import EmotionClassifier

    return EmotionClassifier.create_from_options()

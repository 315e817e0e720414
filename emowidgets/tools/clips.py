"""The shared test clips and their frames, for the tests and the benchmarks alike (one definition: the
benchmarks do not reach into the tests' ``conftest``).

``SHARED`` is the checkout's ``../shared`` folder (or ``$EMOWIDGETS_SHARED``); its READMEs describe every asset.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (an editable install)."""
SHARED = Path(os.environ.get("EMOWIDGETS_SHARED", ROOT.parent / "shared"))
CLIPS = SHARED / "assets" / "clips"
IMAGES = SHARED / "assets" / "images"


def video_frames(path: Path, size: tuple[int, int] | None = None, every: int = 1) -> np.ndarray:
    """All (or every n-th) frames of a clip as RGB uint8 ``(T, H, W, 3)``, decoded by ffmpeg (scaled to ``size``
    ``(width, height)`` if given)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = size or tuple(int(v) for v in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={w}:{h}", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)[::every]

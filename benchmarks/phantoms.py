"""Phantom students: tiles the class view makes on screens with no face (ffmpeg test patterns, 10 s at 10 fps).

Each pattern (``testsrc2``: moving colour shapes and a counter; ``smptebars``; ``mandelbrot``: a zoom) is made
by ffmpeg's lavfi sources, sent through the ``gallery`` and ``camera`` pipelines and the real
:class:`~emowidgets.classview.ClassView`. Reported per pattern and preset: tracks made, the most tiles
shown at once, the best detection score of any phantom, and whether the page says "no faces found".
Run: ``python benchmarks/phantoms.py --json`` (needs ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from emowidgets.classview import ClassView
from emowidgets.pipeline import Pipeline
from emowidgets.sources import pipeline_options

PATTERNS = ("testsrc2", "smptebars", "mandelbrot")


def pattern_frames(name: str, folder: Path, seconds: float = 10.0) -> list[np.ndarray]:
    path = folder / f"{name}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{name}=size=1280x720:rate=10",
                    "-t", str(seconds), "-pix_fmt", "yuv420p", str(path)], check=True)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in PATTERNS:
            frames = pattern_frames(name, Path(tmp))
            for kind in ("gallery", "camera"):
                with Pipeline.create_from_options(pipeline_options(kind, args.model), warmup=False) as pipeline:
                    view = ClassView()
                    tracks: set[int] = set()
                    best, most_tiles = 0.0, 0
                    for i, frame in enumerate(frames):
                        result = pipeline.process_array(frame, seq=i, timestamp_ms=i * 100)
                        view.update(result, now=i * 0.1)
                        tracks.update(int(t) for t in result.track_ids)
                        best = max([best, *map(float, result.scores)])
                        most_tiles = max(most_tiles, len(view.faces))
                rows.append({"pattern": name, "preset": kind, "tracks": len(tracks), "max_tiles": most_tiles,
                             "best_score": round(best, 3), "no_faces_shown": bool(view.no_faces)})
                print(rows[-1], flush=True)
    print(json.dumps({"model": args.model, "rows": rows}))


if __name__ == "__main__":
    main()

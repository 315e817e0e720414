"""What the second look at new faces (``PipelineOptions.check_faces``) costs real faces, on the shared clips.

Each clip of people (``../shared/assets/clips``) runs through the ``camera`` and ``gallery`` pipelines at
its own timestamps, with the check on and off. Reported per clip and preset: face-frames reported with the
check as a share of those without (``kept``: 1.0 = nobody lost), tracks reported with and without, and the
milliseconds of the check per frame (median over frames that made one, and the mean over all frames; the
full-range model it uses is loaded before the clock starts, once per pipeline: 20-40 ms).
The faceless side (ffmpeg test patterns) is ``benchmarks/phantoms.py``.
Run: ``python benchmarks/face_check.py --json``; the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from emowidgets.pipeline import Pipeline
from emowidgets.sources import pipeline_options

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "assets" / "clips"
NAMES = ("single_face.mp4", "single_face_short.mp4", "sad_to_happy.mp4", "multi_face.mp4", "multi_face_3x2.mp4")


def clip_frames(path: Path, limit: int) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames, fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--frames", type=int, default=150, help="frames of each clip (from its start)")
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    rows = []
    for name in NAMES:
        frames, fps = clip_frames(CLIPS / name, args.frames)
        for kind in ("camera", "gallery"):
            counts, tracks, check_ms = {}, {}, []
            for check in (True, False):
                options = dataclasses.replace(pipeline_options(kind, args.model), check_faces=check)
                with Pipeline.create_from_options(options, warmup=False) as pipeline:
                    pipeline.detector.check(frames[0], np.zeros((0, 4), np.float32))  # load its model untimed
                    seen: set[int] = set()
                    total = 0
                    for i, frame in enumerate(frames):
                        result = pipeline.process_array(frame, seq=i, timestamp_ms=1 + round(i * 1000 / fps))
                        total += len(result.track_ids)
                        seen.update(int(t) for t in result.track_ids)
                        if check:
                            check_ms.append(result.timings["check"])
                counts[check], tracks[check] = total, len(seen)
            made = [ms for ms in check_ms if ms > 0.5]
            rows.append({"clip": name, "preset": kind, "frames": len(frames),
                         "kept": round(counts[True] / counts[False], 4) if counts[False] else None,
                         "tracks_checked": tracks[True], "tracks_unchecked": tracks[False],
                         "check_ms_median": round(float(np.median(made)), 1) if made else 0.0,
                         "check_ms_mean": round(float(np.mean(check_ms)), 2)})
            print(rows[-1], flush=True)
    print(json.dumps({"model": args.model, "rows": rows}))


if __name__ == "__main__":
    main()

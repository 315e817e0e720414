"""Kernel time per frame, emowidgets against the `fer` package's ``detect_emotions``, side by side on one clip.

    python benchmarks/vs_fer.py --clip ../shared/assets/clips/single_face.mp4 \
        --fer-python ~/.cache/emowidgets/fervenv/bin/python --json

`fer` is not a dependency: install it once in a scratch venv outside the project
(``python -m venv ~/.cache/emowidgets/fervenv && ~/.cache/emowidgets/fervenv/bin/pip install fer==25.10.3
"setuptools<81"``) and pass its python. Both sides get the same decoded RGB frames (no JPEG decode on
either side), after a few warm-up frames, and the rounds alternate so machine load hits both alike.
emowidgets runs at its defaults with the clip's timestamps (faces followed between detections, the
classification budget) and, for comparison, with the full treatment on every frame (no timestamps).
Figures are mean milliseconds per frame (detections and classifications amortised over the frames), the
median over rounds. Last stdout line (with --json): one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from emowidgets.tools.clips import video_frames

FER_SCRIPT = """
import sys, time, json, numpy as np
frames = np.load(sys.argv[1])
from fer.fer import FER
det = FER()
for f in frames[:5]:
    det.detect_emotions(f)
ts = []
for f in frames:
    t = time.perf_counter(); det.detect_emotions(f); ts.append(time.perf_counter() - t)
print(json.dumps([1000 * t for t in ts]))
"""


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def emowidgets_ms(frames: np.ndarray, model: str, fps: float, timed: bool) -> list[float]:
    """Per-frame milliseconds of ``Pipeline.process_array`` over ``frames`` (a fresh pipeline, warmed up)."""
    from emowidgets.infer import ClassifierOptions
    from emowidgets.pipeline import Pipeline, PipelineOptions

    with Pipeline.create_from_options(PipelineOptions(classifier=ClassifierOptions(model=model)),
                                      warmup=False) as pipe:
        pipe.classifier.warmup(background=False)
        for f in frames[:5]:
            pipe.process_array(f)
        pipe.tracker.reset()
        out = []
        for i, f in enumerate(frames):
            t = time.perf_counter()
            pipe.process_array(f, seq=i, timestamp_ms=round(1000 + i * 1000 / fps) if timed else 0)
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--fer-python", type=Path, required=True, help="python of a venv with fer==25.10.3")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--fps", type=float, default=25.0, help="the clip's frame rate (timestamps)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    frames = video_frames(args.clip)[: args.frames]
    rows: dict[str, list[float]] = {"fer": [], "main": [], "fast": [], "main_full": [], "fast_full": []}
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "frames.npy"
        np.save(npy, frames)
        for _ in range(args.rounds):
            out = subprocess.run([str(args.fer_python), "-c", FER_SCRIPT, str(npy)], capture_output=True, text=True,
                                 check=True).stdout
            rows["fer"].append(float(np.mean(json.loads(out.strip().splitlines()[-1]))))
            for model in ("main", "fast"):
                rows[model].append(float(np.mean(emowidgets_ms(frames, model, args.fps, timed=True))))
                rows[f"{model}_full"].append(float(np.mean(emowidgets_ms(frames, model, args.fps, timed=False))))
    fer = float(np.median(rows["fer"]))
    report = {"clip": args.clip.name, "frames": len(frames), "cpu": cpu_name(),
              "fer_ms": round(fer, 2),
              **{f"{k}_ms": round(float(np.median(v)), 2) for k, v in rows.items() if k != "fer"},
              **{f"ratio_{k}": round(fer / float(np.median(v)), 2) for k, v in rows.items() if k != "fer"},
              "rounds": {k: [round(x, 2) for x in v] for k, v in rows.items()}}
    if not args.json:
        for key, value in report.items():
            print(f"{key:>16}: {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

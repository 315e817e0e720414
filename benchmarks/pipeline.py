"""Kernel-side cost of the live pipeline on a real clip: ms per frame for decode, detect, crop, classify.

Usage: python benchmarks/pipeline.py --clip VIDEO [--model main|fast] [--frames N] [--json]
Frames are JPEG-encoded first (quality 80, as the browser sends them), then timed through
`Pipeline.process_bytes`. Also measures, in a fresh interpreter, `import emowidgets` -> first result
(`first_result_s`, with the user's JAX compilation cache, ~/.cache/emowidgets/jax, so warm after a first run;
`benchmarks/cold_start.py` breaks it down and compares the cache warm, cold and off).
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import simplejpeg

FIRST_RESULT = """
import time, sys
t0 = time.perf_counter()
import emowidgets
p = emowidgets.Pipeline.create_from_options(emowidgets.PipelineOptions(
    classifier=emowidgets.ClassifierOptions(model=sys.argv[2])))
r = p.process_bytes(open(sys.argv[1], "rb").read())
print(time.perf_counter() - t0, len(r.boxes))
"""


def clip_frames(path: str, limit: int) -> list[bytes]:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-frames:v", str(limit), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=80) for f in frames]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--model", default="main")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from emowidgets.infer import ClassifierOptions
    from emowidgets.pipeline import Pipeline, PipelineOptions

    jpegs = clip_frames(args.clip, args.frames)
    first_jpeg = "/tmp/emowidgets_bench_first.jpg"
    Path(first_jpeg).write_bytes(jpegs[0])
    out = subprocess.run([sys.executable, "-c", FIRST_RESULT, first_jpeg, args.model], capture_output=True,
                         text=True, check=True).stdout.split()
    first_result_s = float(out[0])

    pipe = Pipeline.create_from_options(PipelineOptions(classifier=ClassifierOptions(model=args.model)))
    pipe.classifier.warmup(background=False)
    for data in jpegs[:10]:
        pipe.process_bytes(data)
    rows, faces = [], []
    t0 = time.perf_counter()
    for i, data in enumerate(jpegs):
        result = pipe.process_bytes(data, seq=i)
        rows.append(result.timings)
        faces.append(len(result.boxes))
    wall = time.perf_counter() - t0
    pipe.close()
    med = {k: round(float(np.median([r[k] for r in rows])), 2) for k in rows[0]}
    report = {"clip": args.clip, "model": args.model, "frames": len(rows), "faces_per_frame": float(np.mean(faces)),
              "decode_ms": med["decode"], "detect_ms": med["detect"], "crop_ms": med["crop"],
              "classify_ms": med["classify"], "total_ms": med["total"],
              "p95_total_ms": round(float(np.percentile([r["total"] for r in rows], 95)), 2),
              "fps": round(len(rows) / wall, 1), "first_result_s": round(first_result_s, 2)}
    if not args.json:
        for key, value in report.items():
            print(f"{key:>16}: {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

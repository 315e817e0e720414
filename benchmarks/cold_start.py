"""Cold start: ``import emowidgets`` -> first result, in fresh interpreters, with JAX's compilation cache warm, cold
and off.

Usage: python benchmarks/cold_start.py [--model main|fast] [--runs N] [--image PHOTO] [--json]

Each run is two fresh interpreters. One times the stages one after the other: importing the pipeline's modules
(``import_s``), creating the MediaPipe detector (``detector_s``, which imports MediaPipe), loading the classifier
(``classifier_s``), its first 1-face call (``compile_s``: an XLA compile, or a read from the cache) and the first
frame through a pipeline made of those (``frame_s``). The other runs what a user runs (``first_result_s``):
``import emowidgets``, ``Pipeline.create_from_options`` and ``process_bytes`` of the photo, as
``benchmarks/pipeline.py`` does. A third makes the pipeline as ``live()`` does (background warm-up on): ``ready_s``
when it returns, ``every_bucket_s`` when the background warm-up has compiled every batch size. Cache modes: ``warm``
(a cache folder a first, unmeasured run filled), ``cold`` (an empty folder per run) and ``off``
(``EMOWIDGETS_CACHE_DIR=off``); the folders are temporary, so ``~/.cache/emowidgets`` is not touched. One unmeasured
run first warms the OS file cache; the modes take turns run by run; figures are medians. ``*_cpu_s`` is the
interpreter's CPU time (all threads, start-up included), less sensitive than wall time to other work on the
machine; ``load`` is the 1-minute load average before and after. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOWIDGETS_SHARED", ROOT.parent / "shared"))

STAGES = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import emowidgets
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.detect import FaceDetector
from emowidgets.infer import ClassifierOptions, EmotionClassifier
t1 = time.perf_counter()
detector = FaceDetector.create_from_options()
t2 = time.perf_counter()
options = PipelineOptions(classifier=ClassifierOptions(model=sys.argv[2]))
classifier = EmotionClassifier.create_from_options(options.classifier)
t3 = time.perf_counter()
classifier.classify(np.zeros((1, 48, 48), np.float32))
t4 = time.perf_counter()
result = Pipeline(detector, classifier, options).process_bytes(open(sys.argv[1], "rb").read())
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "detector_s": t2 - t1, "classifier_s": t3 - t2, "compile_s": t4 - t3,
                  "frame_s": t5 - t4, "staged_total_s": t5 - t0, "staged_cpu_s": time.process_time(),
                  "faces": len(result.boxes),
                  "flax_imported": "flax" in sys.modules, "scipy_imported": "scipy" in sys.modules}))
"""

FIRST_RESULT = """
import json, sys, time
t0 = time.perf_counter()
import emowidgets
p = emowidgets.Pipeline.create_from_options(emowidgets.PipelineOptions(
    classifier=emowidgets.ClassifierOptions(model=sys.argv[2])))
r = p.process_bytes(open(sys.argv[1], "rb").read())
print(json.dumps({"first_result_s": time.perf_counter() - t0, "first_result_cpu_s": time.process_time(),
                  "faces": len(r.boxes)}))
"""

WARMED = """
import json, sys, time
t0 = time.perf_counter()
import emowidgets
p = emowidgets.Pipeline.create_from_options(emowidgets.PipelineOptions(
    classifier=emowidgets.ClassifierOptions(model=sys.argv[2])))
t1 = time.perf_counter()
while p.classifier.warming_up:
    time.sleep(0.02)
print(json.dumps({"ready_s": t1 - t0, "every_bucket_s": time.perf_counter() - t0}))
"""


def run(script: str, image: str, model: str, cache: str) -> dict[str, float]:
    env = dict(os.environ, EMOWIDGETS_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", script, image, model], capture_output=True, text=True, check=True,
                         env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="main", help="classifier: main, fast or a weights path")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per cache mode")
    parser.add_argument("--image", default=str(SHARED / "assets" / "images" / "single_man_smiling.jpg"))
    parser.add_argument("--modes", nargs="+", default=["warm", "cold", "off"], choices=["warm", "cold", "off"])
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rows: dict[str, list[dict[str, float]]] = {mode: [] for mode in args.modes}
    with tempfile.TemporaryDirectory(prefix="emow-cold-") as tmp:
        warm = str(Path(tmp) / "warm")
        run(FIRST_RESULT, args.image, args.model, warm)  # fills the warm cache and the OS file cache
        run(STAGES, args.image, args.model, warm)
        for i in range(args.runs):
            for mode in args.modes:
                row: dict[str, float] = {}
                for script in (STAGES, FIRST_RESULT, WARMED):
                    cache = {"warm": warm, "off": "off"}.get(mode) or tempfile.mkdtemp(dir=tmp, prefix=f"cold{i}-")
                    row.update(run(script, args.image, args.model, cache))
                rows[mode].append(row)
                if not args.json:
                    print(mode, {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    keys = ("import_s", "detector_s", "classifier_s", "compile_s", "frame_s", "staged_total_s", "staged_cpu_s",
            "first_result_s", "first_result_cpu_s", "ready_s", "every_bucket_s")
    report: dict[str, object] = {"model": args.model, "runs": args.runs, "cpu": cpu_name(), "cores": os.cpu_count(),
                                 "load": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    for mode, mode_rows in rows.items():
        summary: dict[str, object] = {k: round(statistics.median(r[k] for r in mode_rows), 3) for k in keys}
        summary["first_result_min_s"] = round(min(r["first_result_s"] for r in mode_rows), 3)
        summary["first_result_max_s"] = round(max(r["first_result_s"] for r in mode_rows), 3)
        summary["faces"] = mode_rows[0]["faces"]
        summary["flax_imported"] = any(r["flax_imported"] for r in mode_rows)
        summary["scipy_imported"] = any(r["scipy_imported"] for r in mode_rows)
        report[mode] = summary
    if not args.json:
        for mode in rows:
            print(f"{mode:>5}: {report[mode]}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Classifier latency on this CPU: ms per face at batch 1 and at the live bucket sizes.

Usage: python benchmarks/model_latency.py [--model main|fast|PATH] [--tta|--no-tta] [--json]
The last stdout line is a JSON object {"model", "ms_per_face": {batch: ms}, "device"}.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import CROP_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="main")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clf = EmotionClassifier.create_from_options(ClassifierOptions(model=args.model, flip_tta=args.tta))
    rng = np.random.default_rng(0)
    out = {}
    for batch in clf.options.buckets:
        x = rng.random((batch, CROP_SIZE, CROP_SIZE), dtype=np.float32)
        clf.classify(x)
        reps = max(5, 512 // batch)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            clf.classify(x)
            times.append(time.perf_counter() - t0)
        out[batch] = round(float(np.median(times)) * 1000 / batch, 3)
        if not args.json:
            print(f"batch {batch:3d}: {out[batch]:.3f} ms/face")
    print(json.dumps({"model": args.model, "tta": clf.flip_tta, "ms_per_face": out,
                      "device": jax.devices()[0].device_kind}))


if __name__ == "__main__":
    main()

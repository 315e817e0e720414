"""Adapter fit time, 7 classes x 5 shots on real embeddings: first fit (with XLA compile) and warm fits.

Targets: cold < 2 s, warm < 0.3 s. Run: ``python benchmarks/fewshot_fit.py --json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from emowidgets.adapter import BaseHead
from emowidgets.adapter_fit import AdapterOptions, compile_count, fit_adapter
from emowidgets.infer import EmotionClassifier
from emowidgets.vocab import EMOTIONS

FER = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data", default=str(FER))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with np.load(args.data) as d:
        x, y = d["train_x"], d["train_y"]
    classifier = EmotionClassifier.create_from_options()
    base = BaseHead.from_classifier(classifier)
    rng = np.random.default_rng(0)
    shot_sets = []
    for _ in range(args.repeats + 1):
        idx = np.concatenate([rng.choice(np.flatnonzero(y == k), args.shots, replace=False)
                              for k in range(len(EMOTIONS))])
        shot_sets.append((classifier.classify(x[idx].astype(np.float32) / 255).embeddings, y[idx]))
    options = AdapterOptions()
    t0 = time.perf_counter()
    fit_adapter(*shot_sets[0], EMOTIONS, options, base=base)
    cold = time.perf_counter() - t0
    compiles = compile_count()["train"]
    warm, steps = [], []
    for emb, lab in shot_sets[1:]:
        t0 = time.perf_counter()
        _, report = fit_adapter(emb, lab, EMOTIONS, options, base=base)
        warm.append(time.perf_counter() - t0)
        steps.append(report.steps)
    result = {"classes": len(EMOTIONS), "shots": args.shots, "cold_seconds": round(cold, 3),
              "warm_seconds_median": round(statistics.median(warm), 4), "warm_seconds_max": round(max(warm), 4),
              "final_fit_steps_median": statistics.median(steps), "train_compiles_after_cold": compiles,
              "train_compiles_after_warm": compile_count()["train"]}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()

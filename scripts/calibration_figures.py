"""The figure of docs/calibration.md: per-K few-shot accuracy on people.npz under both split rules, and
per-person gains.

Usage:
    python scripts/calibration_figures.py --take MAIN.json --random MAIN_RANDOM.json [--fast FAST.json]
        [--previous PREV.json] [--previous-random PREV_RANDOM.json]

``MAIN.json`` etc. hold the last line of ``emowidgets evaluate fewshot ... --json`` (``--take-key ''`` for
the random split); ``PREV*.json`` hold ``{"previous_adapter": {"1": accuracy, ...}}`` for the adapter this
one replaced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "calibration.png"
HEADS = [("few_shot", "adapter (shipped)", "#d62728"), ("logistic", "logistic", "#1f77b4"),
         ("prototype", "prototypes", "#2ca02c"), ("zero_shot", "zero-shot", "#555555")]


def _last_json(path: str) -> Any:
    return json.loads(Path(path).read_text().strip().splitlines()[-1])


def _curves(ax: Axes, result: dict[str, Any], previous: str | None, fast: str | None, title: str) -> None:
    rows = result["rows"]
    ks = [r["shots"] for r in rows]
    for head, label, color in HEADS:
        ax.plot(ks, [100 * r[f"{head}_accuracy"] for r in rows], "o-", color=color, label=label)
    if previous:
        prev = _last_json(previous)["previous_adapter"]
        ax.plot(ks, [100 * prev[str(k)] for k in ks], "o--", color="#ff7f0e", label="previous adapter")
    if fast:
        ax.plot(ks, [100 * r["few_shot_accuracy"] for r in _last_json(fast)["rows"]], "s:", color="#d62728",
                alpha=0.6, label="adapter, fast model")
    ax.set(xlabel="shots per class (K)", ylabel="accuracy on the person's other images (%)", xticks=ks, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--take", required=True)
    parser.add_argument("--random", required=True)
    parser.add_argument("--fast", default=None)
    parser.add_argument("--previous", default=None)
    parser.add_argument("--previous-random", default=None)
    args = parser.parse_args()
    take, rand = _last_json(args.take), _last_json(args.random)
    fig, (ax, rx, bx) = plt.subplots(1, 3, figsize=(16, 4.4))
    _curves(ax, take, args.previous, args.fast, f"queries from other takes ({take['groups']} people, main)")
    _curves(rx, rand, args.previous_random, None, "queries at random (near-duplicates allowed)")
    k3 = next(r for r in take["rows"] if r["shots"] == 3)
    people = sorted(k3["per_group"].items(), key=lambda kv: kv[1]["zero_shot_accuracy"])
    xs = np.arange(len(people))
    bx.bar(xs - 0.2, [100 * v["zero_shot_accuracy"] for _, v in people], 0.4, color="#999999", label="zero-shot")
    bx.bar(xs + 0.2, [100 * v["few_shot_accuracy"] for _, v in people], 0.4, color="#d62728", label="adapter")
    bx.set(xticks=xs, xlabel="person", ylabel="accuracy (%)", title="per person, K = 3, other takes")
    bx.set_xticklabels([p for p, _ in people], fontsize=7)
    bx.legend(fontsize=8)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=100)
    print(OUT)


if __name__ == "__main__":
    main()

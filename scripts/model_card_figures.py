"""Figures for weights/README.md: confusion matrices of the shipped models as the live pipeline runs them
(FER2013 test and people.npz, people the model never saw) and, given their metrics, the training curves.

Usage: python scripts/model_card_figures.py --data ../shared/data/fer2013.npz [--runs RUN_METRICS_DIR]
RUN_METRICS_DIR holds the metrics_*.jsonl files that `emowidgets train` writes (one per run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.vocab import EMOTIONS

OUT = Path(__file__).resolve().parent.parent / "docs" / "images"


def confusion(model: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, bool]:
    """Test confusion matrix of a shipped model as the live pipeline runs it, and whether that flips."""
    clf = EmotionClassifier.create_from_options(ClassifierOptions(model=model))
    pred = np.concatenate([clf.classify(x[i : i + 64]).probs.argmax(-1) for i in range(0, len(x), 64)])
    cm = np.zeros((7, 7), int)
    np.add.at(cm, (y, pred), 1)
    return cm, clf.flip_tta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--people", default=str(Path(__file__).resolve().parents[2] / "shared/data/people.npz"))
    parser.add_argument("--runs", type=Path, help="metrics_*.jsonl folder; no training-curve figure without it")
    args = parser.parse_args()
    with np.load(args.data) as data, np.load(args.people) as people:
        sets = {"FER2013 test": (data["test_x"], data["test_y"]), "people.npz": (people["x"], people["y"])}
    fig, axes = plt.subplots(2, 2, figsize=(12, 10.4))
    for (ax_row, (name, (x, y))), model in [(row, m) for row in zip(axes, sets.items(), strict=True)
                                            for m in ("main", "fast")]:
        ax = ax_row[0 if model == "main" else 1]
        cm, flip = confusion(model, x.astype(np.float32) / 255, y.astype(int))
        norm = cm / cm.sum(1, keepdims=True)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(7):
            for j in range(7):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(7), EMOTIONS, rotation=45)
        ax.set_yticks(range(7), EMOTIONS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{model}{' (flip TTA)' if flip else ''}: {name}, accuracy {np.trace(cm) / cm.sum():.1%}")
    fig.tight_layout()
    fig.savefig(OUT / "confusion.png", dpi=110)
    if args.runs is None:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for path in sorted(args.runs.glob("metrics_*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        ax.plot([r["epoch"] for r in rows], [r["val_accuracy"] for r in rows], label=path.stem[8:])
    ax.set_xlabel("epoch")
    ax.set_ylabel("val accuracy (EMA weights, flip TTA)")
    ax.set_ylim(0.4, 0.75)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("FER2013 val accuracy per epoch (H200 runs)")
    fig.tight_layout()
    fig.savefig(OUT / "training_curves.png", dpi=110)


if __name__ == "__main__":
    main()

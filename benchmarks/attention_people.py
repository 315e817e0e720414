"""How often "needs attention" would flag a neutral student, and how often a clearly negative one, per rule.

A class-view flag needs a sustained expression; a posed photo of people.npz stands for one held expression
(its score held over the window). For each person the *resting face* is what the class view learns in a
lesson's first minute: their other calm images (leave-one-out; people with a single calm image are left out
of the false-alarm count), plus a share ``--contamination`` of their non-neutral images to mimic a resting
minute that is not all rest. Rules, each swept over its threshold:

- ``absolute``: negative score (angry + disgust + fear + sad) of the base model ≥ T (the class view before);
- ``calibrated``: the same on auto-calibrated scores (embedding shifted onto the neutral reference);
- ``relative``: base negative score minus the person's resting level ≥ T (the class view's rule,
  :func:`emowidgets.attention.resting_level`: the median over resting frames whose top class is not happy or
  surprise);
- ``calibrated_relative``: both at once (auto-calibrated scores, minus their resting level).

``false_alarm`` is the share of calm images flagged; ``hit`` the share of negative images flagged whose
label most raters chose (``votes`` ≥ 0.5: clearly negative); FER2013 val neutral faces give the
``absolute`` rule's false alarms on strangers. Run: ``python benchmarks/attention_people.py --model fast --json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emowidgets.attention import negative_scores, resting_level
from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.vocab import EMOTIONS, NEGATIVE

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NEUTRAL = EMOTIONS.index("neutral")
NEG = np.isin(np.array(EMOTIONS), NEGATIVE)
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def embed(classifier: EmotionClassifier, x: np.ndarray) -> np.ndarray:
    return np.concatenate([classifier.classify(x[i : i + 64].astype(np.float32) / 255).embeddings
                           for i in range(0, len(x), 64)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--contamination", type=float, default=0.25)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=args.model))
    reference = read_reference(classifier.metadata, classifier.embed_dim)
    with np.load(SHARED / "people.npz") as d:
        x, y, person, votes = d["x"], d["y"].astype(np.int64), d["person"], d["votes"].astype(np.float32)
    emb = embed(classifier, x)
    clear = NEG[y] & (votes[np.arange(len(y)), np.minimum(y, 5)] >= 0.5)

    def probs(e: np.ndarray) -> np.ndarray:
        return classifier.probs_from_embeddings(e)

    def negative(e: np.ndarray) -> np.ndarray:
        return negative_scores(probs(e))

    scores: dict[str, list[np.ndarray]] = {k: [] for k in ("absolute", "calibrated", "relative",
                                                           "calibrated_relative")}
    is_calm: list[np.ndarray] = []
    is_clear: list[np.ndarray] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for p in np.unique(person):
            calm = np.flatnonzero((person == p) & (y == NEUTRAL))
            others = np.flatnonzero((person == p) & (y != NEUTRAL))
            for q in np.concatenate([calm, others[clear[others]]]):
                rest = calm[calm != q]
                if len(rest) == 0:
                    continue
                pool = others[others != q]
                extra = rng.choice(pool, min(len(pool), round(args.contamination / (1 - args.contamination)
                                                              * len(rest))), replace=False)
                resting = np.concatenate([rest, extra])
                calib = AutoCalibrator(reference, AutoCalibrationOptions(frames=len(resting)))
                rest_cal = calib(np.full(len(resting), p), emb[resting])
                q_cal = calib(np.array([p]), emb[[q]])
                raw, cal = negative(emb[[q]])[0], negative(q_cal)[0]
                scores["absolute"].append(raw)
                scores["calibrated"].append(cal)
                scores["relative"].append(raw - resting_level(probs(emb[resting])))
                scores["calibrated_relative"].append(cal - resting_level(probs(rest_cal)))
                is_calm.append(y[q] == NEUTRAL)
                is_clear.append(clear[q])
    calm_mask, clear_mask = np.array(is_calm), np.array(is_clear)
    with np.load(SHARED / "fer2013.npz") as d:
        fer_neutral = d["val_x"][d["val_y"] == NEUTRAL]
    fer_neg = negative(embed(classifier, fer_neutral))
    rows = []
    for rule, values in scores.items():
        v = np.array(values)
        for t in THRESHOLDS:
            row = {"rule": rule, "threshold": t, "false_alarm": round(float((v[calm_mask] >= t).mean()), 4),
                   "hit": round(float((v[clear_mask] >= t).mean()), 4)}
            if rule == "absolute":
                row["fer_val_false_alarm"] = round(float((fer_neg >= t).mean()), 4)
            rows.append(row)
            print(row, flush=True)
    out = {"model": args.model, "contamination": args.contamination, "seeds": args.seeds,
           "calm_queries": int(calm_mask.sum()), "clear_negative_queries": int(clear_mask.sum()),
           "people": len(np.unique(person)), "rows": rows}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Label-free calibration on people the model never saw (people.npz): each person's resting face known, no labels.

For every person, the resting face is the per-dimension median embedding of their neutral images
(plus, to mimic a lesson's unlabelled first seconds, a share ``--contamination`` of their other
images); every other image of theirs is then classified after the shift of
:class:`emowidgets.autocalib.AutoCalibrator`, against the base model zero-shot on the same images.
``neutral_kept`` is the share of their neutral images still called neutral after the shift.
Run: ``python benchmarks/autocalib_people.py --model main --json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.vocab import EMOTIONS

PEOPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "people.npz"
NEUTRAL = EMOTIONS.index("neutral")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="main")
    parser.add_argument("--data", default=str(PEOPLE))
    parser.add_argument("--crop", default="x", help="x (live-like framing) or x_box")
    parser.add_argument("--contamination", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=args.model))
    reference = read_reference(classifier.metadata, classifier.embed_dim)
    with np.load(args.data) as d:
        x, y, person = d[args.crop], d["y"].astype(np.int64), d["person"]
    emb = np.concatenate([classifier.classify(x[i : i + 64].astype(np.float32) / 255).embeddings
                          for i in range(0, len(x), 64)])
    rows = []
    for share in args.contamination:
        zero, calibrated, kept, per_person = [], [], [], []
        for seed in range(args.seeds if share else 1):
            rng = np.random.default_rng(seed)
            for p in np.unique(person):
                neutral = np.flatnonzero((person == p) & (y == NEUTRAL))
                others = np.flatnonzero((person == p) & (y != NEUTRAL))
                extra = rng.choice(others, round(share / (1 - share) * len(neutral)), replace=False)
                resting = rng.permutation(np.concatenate([neutral, extra]))
                queries = np.setdiff1d(others, extra)
                calib = AutoCalibrator(reference, AutoCalibrationOptions(frames=len(resting)))
                calib(np.full(len(resting), p), emb[resting])
                shifted = calib(np.full(len(queries), p), emb[queries])
                z = classifier.probs_from_embeddings(emb[queries]).argmax(1) == y[queries]
                c = classifier.probs_from_embeddings(shifted).argmax(1) == y[queries]
                zero.append(z)
                calibrated.append(c)
                per_person.append(c.mean() - z.mean())
                kept.append(classifier.probs_from_embeddings(calib(np.full(len(neutral), p), emb[neutral])
                                                             ).argmax(1) == NEUTRAL)
        rows.append({"contamination": share, "n": int(sum(map(len, zero))),
                     "zero_shot_accuracy": round(float(np.concatenate(zero).mean()), 4),
                     "calibrated_accuracy": round(float(np.concatenate(calibrated).mean()), 4),
                     "people_helped": round(float(np.mean(np.array(per_person) > 0)), 3),
                     "people_hurt": round(float(np.mean(np.array(per_person) < 0)), 3),
                     "neutral_kept": round(float(np.concatenate(kept).mean()), 4)})
    out = {"model": args.model, "crop": args.crop, "flip_tta": classifier.flip_tta, "people": len(np.unique(person)),
           "rows": rows}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

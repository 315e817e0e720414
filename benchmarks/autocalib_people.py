"""Label-free calibration on people the model never saw (people.npz): each person's resting face known, no labels.

For every person, the resting face is the per-dimension median embedding of their neutral images
(plus, to mimic a lesson's unlabelled first seconds, a share ``--contamination`` of their other
images), leaving one neutral image out each time; every other image of theirs is then classified after
the shift of :class:`emowidgets.autocalib.AutoCalibrator`, against the base model zero-shot on the same
images. The neutral image left out is the calm face judged: ``calm_to_negative`` is the share of those called
angry, disgust, fear or sad (a false "needs attention"), ``calm_kept`` the share still called neutral.
People with a single neutral image are left out.
Run: ``python benchmarks/autocalib_people.py --model main --json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.vocab import EMOTIONS, NEGATIVE

PEOPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "people.npz"
NEUTRAL = EMOTIONS.index("neutral")
NEGATIVE_IDS = [EMOTIONS.index(e) for e in NEGATIVE]


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
        zero, calibrated, calm_zero, calm, per_person = [], [], [], [], []
        for seed in range(args.seeds if share else 1):
            rng = np.random.default_rng(seed)
            for p in np.unique(person):
                neutral = np.flatnonzero((person == p) & (y == NEUTRAL))
                others = np.flatnonzero((person == p) & (y != NEUTRAL))
                if len(neutral) < 2:  # one neutral image is needed as the calm face to judge
                    continue
                extra = rng.choice(others, round(share / (1 - share) * (len(neutral) - 1)), replace=False)
                queries = np.setdiff1d(others, extra)
                for held in neutral:  # leave one neutral image out of the resting frames: the calm face judged
                    resting = rng.permutation(np.concatenate([np.setdiff1d(neutral, [held]), extra]))
                    calib = AutoCalibrator(reference, AutoCalibrationOptions(frames=len(resting)))
                    calib(np.full(len(resting), p), emb[resting])
                    top = classifier.probs_from_embeddings(calib(np.full(len(queries), p), emb[queries])).argmax(1)
                    z = classifier.probs_from_embeddings(emb[queries]).argmax(1) == y[queries]
                    c = top == y[queries]
                    zero.append(z)
                    calibrated.append(c)
                    per_person.append(c.mean() - z.mean())
                    calm_zero.append(classifier.probs_from_embeddings(emb[[held]]).argmax(1))
                    calm.append(classifier.probs_from_embeddings(calib(np.array([p]), emb[[held]])).argmax(1))
        rows.append({"contamination": share, "n": int(sum(map(len, zero))),
                     "zero_shot_accuracy": round(float(np.concatenate(zero).mean()), 4),
                     "calibrated_accuracy": round(float(np.concatenate(calibrated).mean()), 4),
                     "people_helped": round(float(np.mean(np.array(per_person) > 0)), 3),
                     "people_hurt": round(float(np.mean(np.array(per_person) < 0)), 3),
                     "calm_to_negative_zero_shot": round(float(np.isin(np.concatenate(calm_zero), NEGATIVE_IDS
                                                                       ).mean()), 4),
                     "calm_to_negative": round(float(np.isin(np.concatenate(calm), NEGATIVE_IDS).mean()), 4),
                     "calm_kept": round(float((np.concatenate(calm) == NEUTRAL).mean()), 4)})
    out = {"model": args.model, "crop": args.crop, "flip_tta": classifier.flip_tta, "people": len(np.unique(person)),
           "rows": rows}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

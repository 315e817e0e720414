"""Choose and store a model's prior correction: a per-class offset added to the head's bias at load time.

The network is fitted to FER2013's class mix (25 % happy, 17 % neutral, 1.5 % disgust) and, on people it
never saw, calls most mild expressions neutral (people.npz, main: neutral recall 100 %, disgust 17 %). The
offset is ``-tau * log(train prior)`` (logit adjustment: ``tau`` = 1 would assume every class equally
likely, 0 keeps FER2013's mix) minus ``neutral`` on the neutral class. The pair is chosen on a grid by one
rule: the highest people.npz accuracy (``x`` crops, all 29 people) among the pairs that cost at most
``--max-val-drop`` points of FER2013 val accuracy. Person-grouped cross-validation of that choice
(choose on 4/5 of the people, score the other 1/5, 10 shuffles) says how much of the gain is fitted to
these 29 people. ``--tau``/``--neutral`` store a given pair instead (the fast model reuses main's: the
prior is a fact about classrooms, not about a network). Only the file's metadata changes (tensors and the
backbone id stay); FER2013 test is never looked at here.

    python scripts/prior_correction.py --model weights/emotion_main.safetensors
    python scripts/prior_correction.py --model weights/emotion_fast.safetensors --tau 0.5 --neutral 0.5
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from emowidgets.infer import PRIOR_KEY, ClassifierOptions, EmotionClassifier
from emowidgets.model import EMOTIONS, update_metadata

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
NEUTRALS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
NEUTRAL = EMOTIONS.index("neutral")


def log_probs(classifier: EmotionClassifier, x: np.ndarray) -> np.ndarray:
    """Uncorrected log-probabilities of uint8 crops ``(N, 48, 48)``."""
    return np.log(np.clip(classifier.classify(x.astype(np.float32) / 255).probs, 1e-8, 1.0))


def offset(log_prior: np.ndarray, tau: float, neutral: float) -> np.ndarray:
    """The logit adjustment for one (tau, neutral) pair."""
    out = -tau * log_prior
    out[NEUTRAL] -= neutral
    return out


def accuracy(logp: np.ndarray, y: np.ndarray, adj: np.ndarray) -> float:
    return float(((logp + adj).argmax(1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="weights file to update in place")
    parser.add_argument("--fer", default=str(SHARED / "fer2013.npz"), help="FER2013 .npz (train_y, val_x/val_y)")
    parser.add_argument("--people", default=str(SHARED / "people.npz"), help="person-labelled .npz (x, y, person)")
    parser.add_argument("--max-val-drop", type=float, default=0.5, help="FER2013 val points the correction may cost")
    parser.add_argument("--tau", type=float, help="store this tau (with --neutral) instead of choosing")
    parser.add_argument("--neutral", type=float, help="store this neutral offset (with --tau)")
    parser.add_argument("--dry-run", action="store_true", help="print the choice, do not write the file")
    args = parser.parse_args()
    path = Path(args.model)
    live_tta = "fast" not in path.name  # the model's live default: flip TTA for main, none for fast
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=str(path), flip_tta=live_tta,
                                                                         prior_correction=False))
    with np.load(args.fer) as d:
        prior = np.bincount(d["train_y"], minlength=len(EMOTIONS)) / len(d["train_y"])
        val_logp, val_y = log_probs(classifier, d["val_x"]), d["val_y"]
    with np.load(args.people) as d:
        ppl_logp, ppl_y, person = log_probs(classifier, d["x"]), d["y"], d["person"]
    log_prior = np.log(prior)
    base_val = accuracy(val_logp, val_y, np.zeros(len(EMOTIONS)))
    grid = [(t, n) for t, n in itertools.product(TAUS, NEUTRALS)
            if accuracy(val_logp, val_y, offset(log_prior, t, n)) >= base_val - args.max_val_drop / 100]

    def best(mask: np.ndarray) -> tuple[float, float]:  # ties go to the smaller correction (grid order)
        return max(grid, key=lambda g: accuracy(ppl_logp[mask], ppl_y[mask], offset(log_prior, *g)))

    rng = np.random.default_rng(0)
    people, correct = np.unique(person), 0
    for _ in range(10):
        for fold in np.array_split(rng.permutation(people), 5):
            held = np.isin(person, fold)
            correct += int(((ppl_logp[held] + offset(log_prior, *best(~held))).argmax(1) == ppl_y[held]).sum())
    chosen = (args.tau, args.neutral) if args.tau is not None and args.neutral is not None else best(
        np.ones(len(ppl_y), bool))
    adj = offset(log_prior, *chosen)
    report = {
        "model": str(path), "tau": chosen[0], "neutral": chosen[1], "logit_adjustment": adj.round(4).tolist(),
        "fer_val_before": round(base_val, 4), "fer_val_after": round(accuracy(val_logp, val_y, adj), 4),
        "people_before": round(accuracy(ppl_logp, ppl_y, np.zeros(len(EMOTIONS))), 4),
        "people_after": round(accuracy(ppl_logp, ppl_y, adj), 4),
        "people_rule_person_cv": round(correct / (10 * len(ppl_y)), 4), "allowed_pairs": len(grid),
    }
    if not args.dry_run:
        recipe = {k: report[k] for k in ("tau", "neutral", "fer_val_before", "fer_val_after", "people_before",
                                         "people_after", "people_rule_person_cv")}
        update_metadata(path, **{PRIOR_KEY: json.dumps(report["logit_adjustment"]),
                                 "prior_correction": json.dumps(recipe)})
    print(json.dumps(report))


if __name__ == "__main__":
    main()

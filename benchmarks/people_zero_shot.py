"""Zero-shot accuracy on people the model never saw (people.npz) beside FER2013 val, for every candidate setting.

Candidates: model (main, fast), flip TTA on/off, the stored prior correction on/off, and the main + fast
ensemble (mean log-probabilities); crops: ``x`` (Haar box + 10 %, the contract's crop), ``x_box`` (the box,
FER2013-like framing) and ``live`` (MediaPipe on the whole frame ``full``, then the live pipeline's crop).
The model card's "what was tried" table comes from this. Run:
``python benchmarks/people_zero_shot.py --json`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.tools.evaluation import face_crops

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def log_probs(classifier: EmotionClassifier, crops: np.ndarray) -> np.ndarray:
    return np.log(np.clip(classifier.classify(crops).probs, 1e-8, 1.0))  # classify() batches any N itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", default=str(DATA / "people.npz"))
    parser.add_argument("--fer", default=str(DATA / "fer2013.npz"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with np.load(args.people) as d:
        y = d["y"].astype(np.int64)
        crops = {"x": d["x"].astype(np.float32) / 255, "x_box": d["x_box"].astype(np.float32) / 255}
        full = d["full"]
    with np.load(args.fer) as d:
        crops["fer_val"], val_y = d["val_x"].astype(np.float32) / 255, d["val_y"].astype(np.int64)
    crops["live"], found = face_crops(full, detect=True, progress=not args.json)  # a miss: a blank crop
    labels = {"x": y, "x_box": y, "live": y, "fer_val": val_y}
    logp: dict[str, dict[str, np.ndarray]] = {}
    for model in ("main", "fast"):
        for tta in (True, False):
            for prior in (True, False):
                name = f"{model}{'' if tta else ' no-tta'}{'' if prior else ' no-prior'}"
                clf = EmotionClassifier.create_from_options(ClassifierOptions(model=model, flip_tta=tta,
                                                                              prior_correction=prior))
                logp[name] = {k: log_probs(clf, v) for k, v in tqdm(crops.items(), desc=name, disable=args.json)}
    for prior in ("", " no-prior"):
        logp[f"main+fast{prior}"] = {k: (logp[f"main{prior}"][k] + logp[f"fast no-tta{prior}"][k]) / 2
                                     for k in crops}
    rows = [{"candidate": name, **{k: round(float((v[k].argmax(1) == labels[k]).mean()), 4) for k in crops}}
            for name, v in logp.items()]
    if not args.json:
        print(f"{'candidate':26s}" + "".join(f"{k:>9s}" for k in crops))
        for row in rows:
            print(f"{row['candidate']:26s}" + "".join(f"{row[k]:9.3f}" for k in crops))
    print(json.dumps({"rows": rows, "people_images": len(y), "live_crop_misses": int((~found).sum())}))


if __name__ == "__main__":
    main()

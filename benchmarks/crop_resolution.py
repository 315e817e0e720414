"""How many source pixels a face crop needs: FER2013 accuracy and neutral -> negative false alarms when each
48x48 crop is made from a smaller face (shrunk to ``px`` a side, then scaled back up, as a face sent in a
smaller frame is).

    python benchmarks/crop_resolution.py [--model fast|main] [--split val] [--json]

Sets how far a call gallery's frames may shrink (``PipelineOptions.min_face_px_tiled``). The last stdout line
is a JSON list of ``{px, accuracy, neutral_to_negative}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.tools.evaluation import lesson_yardstick

SHARED = Path(os.environ.get("EMOWIDGETS_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    data = np.load(SHARED / "data" / "fer2013.npz")
    x, y = data[f"{args.split}_x"], data[f"{args.split}_y"]
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=args.model))
    rows = []
    for px in (48, 44, 40, 34, 30, 26):
        shrunk = x if px == 48 else np.stack([
            cv2.resize(cv2.resize(im, (px, px), interpolation=cv2.INTER_AREA), (48, 48),
                       interpolation=cv2.INTER_LINEAR) for im in x])
        pred = classifier.classify(shrunk.astype(np.float32) / 255).probs.argmax(axis=1)
        rows.append({"px": px, "accuracy": round(float((pred == y).mean()), 3),
                     "neutral_to_negative": round(lesson_yardstick(y, pred)["neutral_to_negative"], 3)})
        print(rows[-1], flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

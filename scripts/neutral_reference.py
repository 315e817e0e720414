"""Store a model's neutral reference (mean embedding of FER2013's neutral validation faces) in its file.

Auto-calibration (``emowidgets.autocalib``) shifts each face's resting embedding onto this point.
Validation, not training faces: the network has fitted its training faces, so their mean sits
deeper in "neutral" than an unseen face at rest does (on people.npz the training-face reference
gained 1.3 points, the validation one 4). The embeddings use the model's live default (flip TTA on
for main, off for fast). Only the file's metadata changes: the tensors, and so the backbone id that
adapters are tied to, stay the same.

    python scripts/neutral_reference.py --model weights/emotion_main.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emowidgets.autocalib import REFERENCE_KEY
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import update_metadata
from emowidgets.vocab import EMOTIONS

FER = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="weights file to update in place")
    parser.add_argument("--data", default=str(FER), help="FER2013 .npz (val_x/val_y)")
    args = parser.parse_args()
    path = Path(args.model)
    name = "fast" if "fast" in path.name else "main"
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=str(path), flip_tta=name != "fast"))
    with np.load(args.data) as d:
        neutral = d["val_x"][d["val_y"] == EMOTIONS.index("neutral")]
    embs = np.concatenate([classifier.classify(neutral[i : i + 64].astype(np.float32) / 255).embeddings
                           for i in range(0, len(neutral), 64)])
    meta = update_metadata(path, **{REFERENCE_KEY: json.dumps([round(float(v), 6) for v in embs.mean(0)])})
    print(json.dumps({"model": str(path), "neutral_images": len(neutral), "flip_tta": classifier.flip_tta,
                      "backbone_id": meta["backbone_id"]}))


if __name__ == "__main__":
    main()

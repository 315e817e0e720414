"""Store a model's neutral reference (mean embedding of FER2013's neutral validation faces) in its file.

Auto-calibration (``emowidgets.autocalib``) shifts each face's resting embedding onto this point;
``emowidgets train --export`` stores it itself (:func:`emowidgets.tools.train.add_neutral_reference`).
This script adds it to a weights file made before.

    python scripts/neutral_reference.py --model weights/emotion_main.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emowidgets.tools.train import add_neutral_reference
from emowidgets.vocab import EMOTIONS

FER = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="weights file to update in place")
    parser.add_argument("--data", default=str(FER), help="FER2013 .npz (val_x/val_y)")
    args = parser.parse_args()
    with np.load(args.data) as d:
        neutral = d["val_x"][d["val_y"] == EMOTIONS.index("neutral")]
    meta = add_neutral_reference(args.model, neutral, flip_tta="fast" not in Path(args.model).name)
    print(json.dumps({"model": args.model, "neutral_images": len(neutral), "backbone_id": meta["backbone_id"]}))


if __name__ == "__main__":
    main()

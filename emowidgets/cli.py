"""The ``emowidgets`` command: a thin layer over the functions the notebooks use."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fer2013.npz"


def _train(args: argparse.Namespace) -> int:
    from emowidgets.train import TrainConfig, train

    cfg = TrainConfig.load(args.config)
    if args.teacher:
        cfg = dataclasses.replace(cfg, teacher=args.teacher)
    summary = train(cfg, args.data, run_dir=args.run_dir, export=args.export, time_budget=args.time_budget,
                    progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="emowidgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train an emotion model on FER2013 (resumes from its checkpoint)")
    tr.add_argument("--config", required=True, help="config name in emowidgets/configs (main, fast, tiny) or path")
    tr.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 .npz (default: %(default)s)")
    tr.add_argument("--run-dir", default=None, help="checkpoints and log (default ~/.cache/emowidgets/runs/NAME)")
    tr.add_argument("--export", default=None, help="write the best weights here (safetensors)")
    tr.add_argument("--time-budget", type=float, default=None, help="seconds; cuts the epoch count to fit")
    tr.add_argument("--teacher", default=None, help="override the config's teacher weights (distillation)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emowidgets`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError) as exc:
        print(f"emowidgets: error: {exc}", file=sys.stderr)
        return 2

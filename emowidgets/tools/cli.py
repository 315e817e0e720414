"""The ``emowidgets`` command: a thin layer over the functions the notebooks use.

    emowidgets train --config NAME                       train / resume an emotion model
    emowidgets evaluate --data F.npz [--split S] [--detect] [--json]
    emowidgets evaluate fewshot --data F.npz --group-key K --shots N [N ...] [--seeds S] [--json]
    emowidgets report LOG.parquet [--out report.html]    after-class report from a numbers-only log

Errors print one line, ``emowidgets: error: ...``, and exit with a code per kind (see EXIT_CODES):
1 another emowidgets error, 2 a bad argument or option, 3 a bad data file or class log,
4 a bad model or adapter file, 5 a bad video file, 6 an OS error (permission, disk full).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emowidgets.errors import DataFileError, EmowidgetsError, ModelFileError, OptionsError, VideoFileError

EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (OptionsError, 2), (DataFileError, 3), (ModelFileError, 4), (VideoFileError, 5), (EmowidgetsError, 1),
    (OSError, 6))
"""Exit code of each error kind, most specific first (argparse's own usage errors also exit with 2)."""


def exit_code(exc: EmowidgetsError | OSError) -> int:
    """The exit code of an error the command reports (:data:`EXIT_CODES`)."""
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fer2013.npz"


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    if "rows" in result:  # few-shot: one line per K, then the settings
        print("  K  shots queries   zero adapter  proto logistic  fit s")
        for row in result["rows"]:
            print(f"{row['shots']:>3} {row['shots_mean']:>6.2f} {row['n_test']:>7} "
                  f"{row['zero_shot_accuracy']:>6.1%} {row['few_shot_accuracy']:>7.1%} "
                  f"{row['prototype_accuracy']:>6.1%} {row['logistic_accuracy']:>8.1%} "
                  f"{row['fit_seconds_median']:>6.3f}")
        result = {k: v for k, v in result.items() if k != "rows"}
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k:>10}: {v:.4f}" if isinstance(v, float) else f"  {k:>10}: {v}")
        else:
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def _train(args: argparse.Namespace) -> int:
    from emowidgets.tools.train import TrainConfig, train

    cfg = TrainConfig.load(args.config)
    if args.teacher:
        cfg = dataclasses.replace(cfg, teacher=args.teacher)
    summary = train(cfg, args.data, run_dir=args.run_dir, export=args.export, time_budget=args.time_budget,
                    progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.kind == "fewshot":
        from emowidgets.tools.fewshot import evaluate_fewshot_file

        if not args.group_key or not args.shots:
            raise OptionsError("evaluate fewshot needs --group-key KEY and --shots K [K ...]")
        result = evaluate_fewshot_file(args.data, group_key=args.group_key, shots=args.shots, seeds=args.seeds,
                                       detect=args.detect, model=args.model, split=args.split, flip_tta=args.tta,
                                       take_key=args.take_key, min_votes=args.min_votes,
                                       prior_correction=args.prior_correction, progress=not args.json)
    else:
        from emowidgets.tools.evaluation import evaluate, load_labelled

        x, y = load_labelled(args.data, args.split)
        result = evaluate(x, y, model=args.model, detect=args.detect, flip_tta=args.tta,
                          prior_correction=args.prior_correction, progress=not args.json)
    _emit(result, args.json)
    return 0


def _report(args: argparse.Namespace) -> int:
    from emowidgets.tools.report import write_report

    out = write_report(args.log, args.out)
    print(f"report written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="emowidgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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

    ev = sub.add_parser("evaluate", help="accuracy on labelled images (or: evaluate fewshot ...)")
    ev.add_argument("kind", nargs="?", choices=["fewshot"], help="'fewshot': per-group few-shot adaptation")
    ev.add_argument("--data", required=True, help=".npz with SPLIT_x/SPLIT_y (or x/y) uint8 images and labels 0-6")
    ev.add_argument("--split", default=None, help="key prefix, e.g. test (default: plain x/y)")
    ev.add_argument("--detect", action="store_true", help="detect the largest face first (no face = wrong)")
    ev.add_argument("--model", default="main", help="main, fast or a weights file (default: main)")
    ev.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                    help="average with the mirrored crop (default: as the live pipeline does: on, off for fast)")
    ev.add_argument("--prior-correction", action=argparse.BooleanOptionalAction, default=True,
                    help="add the model file's stored prior correction to the head, as the live pipeline does "
                    "(default: on)")
    ev.add_argument("--group-key", default=None, help="fewshot: array naming each image's group (person)")
    ev.add_argument("--shots", type=int, nargs="+", default=None, help="fewshot: shots per class, e.g. 1 2 3 5")
    ev.add_argument("--take-key", default="take",
                    help="fewshot: array of capture sessions; shots and queries come from different ones "
                    "(default: %(default)s, used if present; '' splits at random)")
    ev.add_argument("--min-votes", type=float, default=None,
                    help="fewshot: drop non-neutral images whose raters' share for the label is below this")
    ev.add_argument("--seeds", type=int, default=1, help="fewshot: repetitions with different shots")
    ev.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ev.set_defaults(func=_evaluate)

    rp = sub.add_parser("report", help="HTML report with plots from a class log (.parquet or .csv)")
    rp.add_argument("log", help="log written by the class view")
    rp.add_argument("--out", default=None, help="output .html (default: next to the log)")
    rp.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emowidgets`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (EmowidgetsError, OSError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"emowidgets: error: {message}", file=sys.stderr)
        return exit_code(exc)

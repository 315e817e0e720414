"""False "needs attention" on real, non-negative students: the shared gallery clips played as a lesson.

The 2x2 and 3x2 gallery clips show people talking, listening and smiling; none of them is upset, so every
student-second the class view flags "negative" is a false alarm. The clip is looped to ``--seconds`` (its
timestamps continue), every ``--every``-th frame goes through the gallery pipeline, and the real
:class:`~emowidgets.classview.ClassView` is fed with each result. Reported per rule: the share of
student-seconds flagged after the first ``resting_seconds`` (the resting level is learned by then), for
the class view's rule (:mod:`emowidgets.attention`) and for the fixed threshold it replaced (mean
negative score ≥ 0.5 over 20 s), and ``shown_negative``: the share of face samples whose shown top label
is angry, disgust, fear or sad (what a teacher reads on the tiles). ``--auto-calibrate`` turns the label-free
calibration on (``classroom()``'s default); attention reads the uncalibrated scores either way.
Run: ``python benchmarks/attention_clip.py --model fast [--auto-calibrate] --json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from emowidgets.attention import AttentionRule, flag_series, negative_scores
from emowidgets.classview import ClassView
from emowidgets.pipeline import Pipeline
from emowidgets.sources import pipeline_options
from emowidgets.vocab import EMOTIONS, NEGATIVE

NEGATIVE_IDS = [EMOTIONS.index(e) for e in NEGATIVE]
CLIPS = Path(__file__).resolve().parents[2] / "shared" / "assets" / "clips"


def frames_of(path: Path, every: int) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % every == 0:
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    return out, every / fps


def old_rule(times: np.ndarray, probs: np.ndarray, threshold: float = 0.5, window: float = 20.0) -> np.ndarray:
    neg = negative_scores(probs)
    first = times[0]
    return np.array([t - first >= window / 2 and neg[(times > t - window) & (times <= t)].mean() >= threshold
                     for t in times])


def run(clip: str, model: str, seconds: float, every: int, auto_calibrate: bool) -> dict[str, object]:
    frames, dt = frames_of(CLIPS / clip, every)
    rule = AttentionRule()
    view = ClassView(max_rate=1.0)
    per_track: dict[int, list[tuple[float, np.ndarray]]] = {}
    view_flags = view_checks = labelled = shown_negative = 0
    options = dataclasses.replace(pipeline_options("gallery", model), auto_calibrate=auto_calibrate)
    with Pipeline.create_from_options(options, warmup=False) as pipeline:
        for k in range(int(seconds / dt)):
            t = k * dt
            result = pipeline.process_array(frames[k % len(frames)], seq=k, timestamp_ms=round(t * 1000))
            view.update(result, now=t)
            assert result.labels == EMOTIONS
            for tid, p in zip(result.track_ids, result.uncalibrated, strict=True):
                per_track.setdefault(int(tid), []).append((t, p))
            if t >= rule.resting_s:
                labelled += len(result.probs)
                shown_negative += int(np.isin(result.probs.argmax(1), NEGATIVE_IDS).sum())
            if t >= rule.resting_s and abs(t - round(t)) < dt / 2:  # once a second, after the resting minute
                shown = [f for f in view.faces if f["present"]]
                view_checks += len(shown)
                view_flags += sum(a["reason"].startswith("negative") for a in view.attention)
    new_flags = old_flags = n = 0
    for series in per_track.values():
        times = np.array([t for t, _ in series])
        probs = np.stack([p for _, p in series])
        keep = times >= rule.resting_s
        new_flags += int(flag_series(times, probs, rule)[keep].sum())
        old_flags += int(old_rule(times, probs)[keep].sum())
        n += int(keep.sum())
    return {"clip": clip, "tracks": len(per_track), "face_samples": n,
            "false_alarm_rule": round(new_flags / max(n, 1), 4),
            "false_alarm_fixed_0.5": round(old_flags / max(n, 1), 4),
            "view_false_alarm": round(view_flags / max(view_checks, 1), 4),
            "shown_negative": round(shown_negative / max(labelled, 1), 4), "auto_calibrate": auto_calibrate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--clips", nargs="+", default=["multi_face.mp4", "multi_face_3x2.mp4"])
    parser.add_argument("--auto-calibrate", action="store_true", help="calibration on (classroom()'s default)")
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    rows = []
    for clip in args.clips:
        rows.append(run(clip, args.model, args.seconds, args.every, args.auto_calibrate))
        print(rows[-1], flush=True)
    print(json.dumps({"model": args.model, "seconds": args.seconds, "rule": AttentionRule().describe(),
                      "rows": rows}))


if __name__ == "__main__":
    main()

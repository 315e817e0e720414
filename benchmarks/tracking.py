"""Detect-then-follow and the classification budget against the full treatment, on the shared clips.

    python benchmarks/tracking.py --json

For each clip the pipeline runs twice at its defaults: with the clip's timestamps (detections a few times
a second, faces followed between them, faces classified within the budget) and without (every frame
detected and every face classified). Against the full run it reports per clip: recall (full-run faces
with a box of IoU >= 0.5 in the followed run), mean IoU, id switches (a full-run track matched to a
different id than before), the share of frames that ran the detector and of faces classified, and
P(happy) in the first and last third for the one-face clips. Then, pooled over the clips, how much the
probabilities of a face moved (total variation) against the change of its crop's thumbnail
(``emowidgets.budget``), which the budget's change threshold was chosen from. Last stdout line (with
--json): one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
from scipy.optimize import linear_sum_assignment

from emowidgets.boxes import iou_matrix
from emowidgets.budget import thumbnails
from emowidgets.pipeline import Pipeline
from emowidgets.preprocess import crop_faces
from emowidgets.tools.clips import CLIPS, video_frames
from emowidgets.vocab import EMOTIONS, FrameResult

FPS = {"single_face.mp4": 25, "sad_to_happy.mp4": 24, "single_face_short.mp4": 30, "multi_face.mp4": 25,
       "multi_face_3x2.mp4": 25}
HAPPY = EMOTIONS.index("happy")
BINS = (0, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 1.0)


def run(pipe: Pipeline, frames: np.ndarray, fps: float, timed: bool) -> list[FrameResult]:
    pipe.tracker.reset()
    return [pipe.process_array(f, seq=i, timestamp_ms=round(1000 + i * 1000 / fps) if timed else 0)
            for i, f in enumerate(frames)]


def compare(full: list[FrameResult], followed: list[FrameResult]) -> dict[str, float]:
    """Recall, mean IoU and id switches of ``followed`` against ``full``, frame by frame."""
    hits = total = switches = 0
    ious: list[float] = []
    last: dict[int, int] = {}
    for ref, got in zip(full, followed, strict=True):
        total += len(ref.boxes)
        if not len(ref.boxes) or not len(got.boxes):
            continue
        m = iou_matrix(ref.boxes, got.boxes)
        rows, cols = linear_sum_assignment(-m)
        for r, c in zip(rows, cols, strict=True):
            if m[r, c] < 0.5:
                continue
            hits += 1
            ious.append(float(m[r, c]))
            ref_id, got_id = int(ref.track_ids[r]), int(got.track_ids[c])
            switches += ref_id in last and last[ref_id] != got_id
            last[ref_id] = got_id
    return {"recall": round(hits / max(total, 1), 4), "mean_iou": round(float(np.mean(ious)), 3),
            "id_switches": switches}


def happy_thirds(results: list[FrameResult]) -> list[float]:
    happy = np.array([r.raw_probs[0, HAPPY] if len(r.raw_probs) else np.nan for r in results])
    third = len(happy) // 3
    return [round(float(np.nanmean(happy[:third])), 3), round(float(np.nanmean(happy[-third:])), 3)]


def change_table(pipe: Pipeline, clips: list[str]) -> list[dict[str, float]]:
    """Total variation of the largest face's probabilities against its thumbnail change, 1-5 frames apart."""
    diffs, moves = [], []
    for clip in clips:
        thumbs, probs = [], []
        for frame in video_frames(CLIPS / clip):
            det = pipe.detector.detect(frame).largest(1)
            crops = crop_faces(frame, det)
            thumbs.append(thumbnails(crops)[0] if len(det) else None)
            probs.append(pipe.classifier.classify(crops).probs[0] if len(det) else None)
        for k in (1, 2, 3, 5):
            for i in range(k, len(thumbs)):
                a, b = thumbs[i - k], thumbs[i]
                if a is not None and b is not None:
                    diffs.append(float(np.abs(b - a).mean()))
                    moves.append(0.5 * float(np.abs(probs[i] - probs[i - k]).sum()))
    d, t = np.array(diffs), np.array(moves)
    table = []
    for lo, hi in itertools.pairwise(BINS):
        m = (d >= lo) & (d < hi)
        if m.any():
            table.append({"change": f"[{lo}, {hi})", "n": int(m.sum()), "tv_median": round(float(np.median(t[m])), 3),
                          "tv_p90": round(float(np.percentile(t[m], 90)), 3)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(FPS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    clips: dict[str, dict[str, object]] = {}
    with Pipeline.create_from_options(warmup=False) as pipe:
        for clip in args.clips:
            frames = video_frames(CLIPS / clip)
            full = run(pipe, frames, FPS[clip], timed=False)
            followed = run(pipe, frames, FPS[clip], timed=True)
            faces = sum(len(r.boxes) for r in followed)
            row: dict[str, object] = {
                **compare(full, followed),
                "detected_frames": round(float(np.mean([r.timings["detect"] > 0 for r in followed])), 3),
                "classified_faces": round(sum(int((r.ages_ms == 0).sum()) for r in followed) / max(faces, 1), 3),
                "max_age_ms": int(max((r.ages_ms.max() for r in followed if len(r.ages_ms)), default=0)),
            }
            if "multi" not in clip:
                row["happy_full"] = happy_thirds(full)
                row["happy_followed"] = happy_thirds(followed)
            clips[clip] = row
        table = change_table(pipe, [c for c in args.clips if "multi" not in c])
    report = {"clips": clips, "change_vs_tv": table}
    if not args.json:
        for clip, row in clips.items():
            print(clip, row)
        for line in table:
            print(line)
    print(json.dumps(report))


if __name__ == "__main__":
    main()

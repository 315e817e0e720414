"""Class-view cost and detection recall on video-call galleries built from the real clips and photos.

Usage:
    python benchmarks/gallery.py --faces 25 --size 1280x720 [--model main|fast] [--frames 20] [--json]
    python benchmarks/gallery.py --sweep [--json]     recall / detect ms of every detector setting

The default run times the whole pipeline (gallery detector preset, all faces of a frame classified in
one batched call, tracking) on ``--frames`` frames after one warm-up frame; the last stdout line is a
JSON object with ``faces_detected``, ``detect_ms`` (median over the frames that ran the detector; the
faces are followed on the others), ``detected_frames`` (their share), ``crop_ms``, ``classify_ms``,
``track_ms``, ``total_ms`` (medians over frames, kernel side), ``fps``, ``recall`` and ``id_switches``
(frames are 0.2 s of gallery video apart).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from gallery_util import build_gallery

from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.pipeline import Pipeline
from emowidgets.sources import pipeline_options


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def run_pipeline(faces: int, size: tuple[int, int], model: str, frames: int) -> dict[str, float | int | str]:
    gallery = build_gallery(faces, size, frames=frames + 1)
    options = pipeline_options("gallery", model)
    with Pipeline.create_from_options(options, warmup=False) as pipeline:
        pipeline.classifier.warmup(background=False)
        compiles = pipeline.classifier.compile_count
        pipeline.process_array(gallery.frames[0])  # warm caches
        results = [pipeline.process_array(f, i, i * 200) for i, f in enumerate(gallery.frames[1:], 1)]
        assert pipeline.classifier.compile_count == compiles, "a live frame recompiled the classifier"
    med = {k: float(np.median([r.timings[k] for r in results])) for k in ("crop", "classify", "head", "total")}
    detected = [r.timings["detect"] for r in results if r.timings["detect"] > 0]  # faces followed in between
    med["detect"] = float(np.median(detected))
    found = [gallery.score(r.boxes)[0] for r in results]
    last: dict[int, int] = {}
    switches = 0  # a tile whose boxes no longer carry the id its face had (duplicate boxes are not switches)
    for r in results:
        in_tile: dict[int, list[int]] = {}
        for tile, tid in zip(gallery.tile_of(r.boxes).tolist(), r.track_ids.tolist(), strict=True):
            in_tile.setdefault(tile, []).append(tid)
        for tile, tids in in_tile.items():
            if last.get(tile, tids[0]) not in tids:
                switches += 1
                last[tile] = tids[0]
            last.setdefault(tile, tids[0])
    return {"faces": faces, "size": f"{size[0]}x{size[1]}", "model": model,
            "detector": f"{options.detector.model} tiles={options.detector.tiles}",
            "faces_detected": int(np.median([len(r.boxes) for r in results])),
            "recall": round(float(np.mean(found)) / faces, 3),
            "detect_ms": round(med["detect"], 1), "detected_frames": round(len(detected) / len(results), 2),
            "crop_ms": round(med["crop"], 1),
            "classify_ms": round(med["classify"], 1), "track_ms": round(med["head"], 2),
            "total_ms": round(med["total"], 1), "fps": round(1000 / med["total"], 1), "id_switches": switches,
            "cpus": os.cpu_count() or 0}


def sweep(frames: int) -> list[dict[str, float | int | str]]:
    rows = []
    galleries = {(n, s): build_gallery(n, s, frames=frames) for n in (25, 36) for s in ((1280, 720), (1920, 1080))}
    for model in ("short", "full"):
        for tiles in ((1, 1), (2, 2), (3, 3)):
            with FaceDetector.create_from_options(DetectorOptions(model=model, tiles=tiles)) as det:  # type: ignore[arg-type]
                det.detect(galleries[25, (1280, 720)].frames[0])
                for (n, size), g in galleries.items():
                    found, fps_, ms = [], [], []
                    for f in g.frames:
                        t = time.perf_counter()
                        d = det.detect(f)
                        ms.append((time.perf_counter() - t) * 1000)
                        a, b = g.score(d.boxes)
                        found.append(a)
                        fps_.append(b)
                    rows.append({"model": model, "tiles": f"{tiles[0]}x{tiles[1]}", "faces": n,
                                 "size": f"{size[0]}x{size[1]}", "recall": round(float(np.mean(found)) / n, 3),
                                 "false_pos": float(np.mean(fps_)), "detect_ms": round(float(np.median(ms)), 1)})
                    print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=25)
    parser.add_argument("--size", type=parse_size, default=(1280, 720), help="WxH, e.g. 1280x720")
    parser.add_argument("--model", default="main", help="classifier: main, fast or a weights path")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--sweep", action="store_true", help="recall and detect time of every detector setting")
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    if args.sweep:
        print(json.dumps(sweep(min(args.frames, 5))))
    else:
        print(json.dumps(run_pipeline(args.faces, args.size, args.model, args.frames)))


if __name__ == "__main__":
    main()

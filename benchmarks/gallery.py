"""Class-view cost and detection recall on video-call galleries built from the real clips and photos.

Usage:
    python benchmarks/gallery.py --faces 49 --size 1920x1080 [--model main|fast] [--style zoom|meet|teams|plain]
        [--camera-off 5] [--reorder] [--frames 20] [--fps 5] [--json]
    python benchmarks/gallery.py --sweep [--json]     recall / detect ms of every whole-frame detector setting

The default run builds a call-like gallery (``benchmarks/callgallery.py``: gaps, rounded corners, name labels,
a moving speaker border, camera-off tiles; ``--style plain`` is the old gap-less ``gallery_util`` grid) and
times the whole pipeline of the gallery preset (grid found in the frames, each call tile searched on its
own, faces followed in between, the classification budget, tracking) on ``--frames`` frames ``1/fps`` s
apart after one warm-up frame. ``--reorder``: half-way, every participant moves to another tile. The last
stdout line is a JSON object with ``grid`` (what was found) and ``grid_ok`` (it is the call's), ``recall``
(camera-on participants found, mean over frames), ``off_boxes`` (boxes on camera-off tiles, all frames),
``extra_boxes`` (duplicates or outside every tile, all frames), ``id_switches`` (a participant whose box
carries another id than on its last frame; through the reorder too), ``detect_ms`` (median over the frames
that searched tiles), ``detected_frames``, ``crop_ms``, ``classify_ms``, ``track_ms``, ``total_ms`` (medians,
kernel side) and ``fps``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from callgallery import CallGallery, build_call
from gallery_util import build_gallery

from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.pipeline import Pipeline
from emowidgets.sources import pipeline_options


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def run_pipeline(faces: int, size: tuple[int, int], model: str, frames: int, style: str = "zoom",
                 camera_off: int = 0, reorder: bool = False, fps: float = 5.0) -> dict[str, float | int | str]:
    if style == "plain":
        plain = build_gallery(faces, size, frames=frames + 1, fps=int(fps))
        cols, rows = plain.cols, plain.rows
        tw, th = plain.tile_size
        tiles = np.array([[c * tw, r * th, tw, th] for r in range(rows) for c in range(cols)], np.float32)[:faces]
        rows_of = (cols,) * (faces // cols) + ((faces % cols,) if faces % cols else ())
        gallery = CallGallery(plain.frames, tiles, rows_of,
                              np.tile(np.arange(faces), (frames + 1, 1)), np.ones(faces, bool),
                              tuple(str(i) for i in range(faces)), np.zeros(frames + 1, np.int64), "plain")
    else:
        gallery = build_call(faces, size, style=style, camera_off=camera_off, frames=frames + 1, fps=fps,
                             reorder_at=(frames + 1) // 2 if reorder else None)
    options = pipeline_options("gallery", model)
    step_ms = 1000 / fps
    with Pipeline.create_from_options(options, warmup=False) as pipeline:
        pipeline.classifier.warmup(background=False)
        compiles = pipeline.classifier.compile_count
        pipeline.process_array(gallery.frames[0], seq=0, timestamp_ms=1)  # warm caches
        results = [pipeline.process_array(f, seq=i, timestamp_ms=1 + round(i * step_ms))
                   for i, f in enumerate(gallery.frames[1:], 1)]
        assert pipeline.classifier.compile_count == compiles, "a live frame recompiled the classifier"
    med = {k: float(np.median([r.timings[k] for r in results])) for k in ("crop", "classify", "head", "total")}
    detected = [r.timings["detect"] for r in results if r.timings["detect"] > 0]  # faces followed in between
    med["detect"] = float(np.median(detected)) if detected else 0.0
    scores = np.array([gallery.score(t, r.boxes) for t, r in enumerate(results, 1)])
    last: dict[int, int] = {}
    switches = 0
    for t, r in enumerate(results, 1):
        who = gallery.participant_at(t, r.boxes)
        for p, tid in zip(who.tolist(), r.track_ids.tolist(), strict=True):
            if p >= 0 and last.setdefault(p, tid) != tid:
                switches += 1
                last[p] = tid
    found_grid = results[-1].grid
    grid_ok = bool(len(results[-1].tiles) == len(gallery.tiles)
                   and np.abs(results[-1].tiles - gallery.tiles).max() <= 3)
    return {"faces": faces, "camera_off": int((~gallery.has_face).sum()), "size": f"{size[0]}x{size[1]}",
            "style": style, "model": model, "reorder": reorder, "grid": found_grid, "grid_ok": grid_ok,
            "faces_detected": int(np.median([len(r.boxes) for r in results])),
            "recall": round(float(scores[:, 0].mean()) / gallery.faces, 3),
            "off_boxes": int(scores[:, 2].sum()), "extra_boxes": int(scores[:, 1].sum()),
            "id_switches": switches,
            "detect_ms": round(med["detect"], 1), "detected_frames": round(len(detected) / len(results), 2),
            "crop_ms": round(med["crop"], 1),
            "classify_ms": round(med["classify"], 1), "track_ms": round(med["head"], 2),
            "total_ms": round(med["total"], 1), "fps": round(1000 / med["total"], 1),
            "cpus": os.cpu_count() or 0, "cpu": cpu_name()}


def cpu_name() -> str:
    """The CPU's model name and whether it has AVX-512 (``lscpu``'s facts, from /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    return f"{name}{' AVX-512' if 'avx512f' in info else ''}"


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
    parser.add_argument("--style", default="zoom", choices=["zoom", "meet", "teams", "plain"])
    parser.add_argument("--camera-off", type=int, default=None, help="tiles without a face (default: 1 in 10)")
    parser.add_argument("--reorder", action="store_true", help="everyone moves to another tile half-way")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second of gallery video")
    parser.add_argument("--sweep", action="store_true", help="recall and detect time of every detector setting")
    parser.add_argument("--json", action="store_true", help="(kept for scripts; the last line is always JSON)")
    args = parser.parse_args()
    if args.sweep:
        print(json.dumps(sweep(min(args.frames, 5))))
    else:
        off = args.faces // 10 if args.camera_off is None and args.style != "plain" else (args.camera_off or 0)
        print(json.dumps(run_pipeline(args.faces, args.size, args.model, args.frames, args.style, off, args.reorder,
                                      args.fps)))


if __name__ == "__main__":
    main()

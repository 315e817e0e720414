"""Names read right from call galleries: each style x font, the label of every tile read by
:class:`emowidgets.names.NameReader` (RapidOCR) and compared with the text the tile shows (a letter the font
has no glyph for is drawn, and so counted, as its base letter: ``callgallery.drawable``).

Usage (the ``names`` extra installed):
    python benchmarks/names_ocr.py --participants 49 --size 1920x1080 --reads 3 --stream --json
Prints per style/font and overall: names right % on one read and (``--reads N``) as the pipeline names a tile,
the vote of its last N reads of frames ``--every`` s apart; ms per tile and per gallery. ``--stream``: the gallery
streamed through a gallery pipeline that reads names (on its own thread): once the first names came, per-frame
ms while a re-read runs and while none does (before the names thread, the frame that read waited for the whole
read: ``ms_per_gallery``). JSON on the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from callgallery import FONTS, STYLES, build_call

from emowidgets.names import UPSCALE, NameReader, clean_name, vote
from emowidgets.vocab import FrameResult


def accuracy(args: argparse.Namespace, size: tuple[int, int], reader: NameReader) -> dict[str, object]:
    """One and voted reads of every style x font gallery."""
    rows, right, voted, total, spent, reads = [], 0, 0, 0, 0.0, 0
    for style in args.styles:
        for i, font in enumerate(args.fonts):
            # 1 frame a second (the clips are decoded at the call's rate), every --every-th read
            call = build_call(args.participants, size, style=style, camera_off=args.camera_off,
                              frames=1 + (args.reads - 1) * args.every, fps=1, seed=i, font=font)
            start = time.perf_counter()
            read = [reader.read(frame, call.tiles) for frame in call.frames[::args.every]]
            took = time.perf_counter() - start
            # Zoom shows no label on a camera-off tile (the name is centred): those are not counted
            want = [(j, clean_name(call.shown[p])) for j, p in enumerate(call.seat[0])
                    if call.has_face[p] or style != "zoom"]
            ok = sum(read[0][j] == name for j, name in want)
            ok_voted = sum(vote([r[j] for r in read]) == name for j, name in want)
            misses = [f"{name!r}->{read[0][j]!r}" for j, name in want if read[0][j] != name]
            rows.append({"style": style, "font": font, "right_pct": round(100 * ok / len(want), 1),
                         "voted_right_pct": round(100 * ok_voted / len(want), 1), "tiles": len(want),
                         "ms_per_tile": round(1000 * took / len(call.tiles) / args.reads, 1),
                         "ms_per_gallery": round(1000 * took / args.reads), "misses": misses})
            right, voted, total = right + ok, voted + ok_voted, total + len(want)
            spent, reads = spent + took, reads + args.reads
            print(f"{style:6s} {font:10s} {ok}/{len(want)} right, {ok_voted} voted, "
                  f"{1000 * took / len(call.tiles) / args.reads:.0f} ms/tile {misses}", flush=True)
    return {"right_pct": round(100 * right / total, 1), "voted_right_pct": round(100 * voted / total, 1),
            "reads": args.reads, "every_s": args.every, "tiles": total,
            "ms_per_tile": round(1000 * spent / (reads * args.participants), 1),
            "ms_per_gallery": round(1000 * spent / reads), "rows": rows}


def stream(args: argparse.Namespace, size: tuple[int, int]) -> dict[str, object]:
    """A gallery streamed (a frame every 200 ms of stream time) through a pipeline that reads names: once the
    first names came, per-frame ms while a re-read runs on the names thread and while none does."""
    from emowidgets.pipeline import Pipeline
    from emowidgets.sources import entry_options

    call = build_call(args.participants, size, style="zoom", camera_off=args.camera_off, frames=10, fps=5)
    options = dataclasses.replace(entry_options("gallery", "fast"), read_names=True)
    reading: list[float] = []
    idle: list[float] = []
    with Pipeline.create_from_options(options) as pipeline:
        i, start = 0, time.perf_counter()

        def step() -> tuple[bool, FrameResult]:
            nonlocal i
            busy = pipeline.reading_names
            result = pipeline.process_array(call.frames[i % len(call.frames)], seq=i, timestamp_ms=200 * (i + 1))
            i += 1
            return busy, result

        while not step()[1].tile_names:
            if time.perf_counter() - start > 300:
                raise RuntimeError("no names after 300 s")
        first_s, first_frames = time.perf_counter() - start, i
        for _ in range(args.stream_frames):
            busy, result = step()
            (reading if busy else idle).append(result.timings["total"])
    return {"first_names_s": round(first_s, 1), "first_names_frame": first_frames, "frames": args.stream_frames,
            "frames_while_reading": len(reading),
            "frame_ms_reading_median": round(float(np.median(reading)), 1) if reading else None,
            "frame_ms_reading_max": round(float(np.max(reading)), 1) if reading else None,
            "frame_ms_idle_median": round(float(np.median(idle)), 1) if idle else None,
            "frame_ms_idle_max": round(float(np.max(idle)), 1) if idle else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=49)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--camera-off", type=int, default=4)
    parser.add_argument("--fonts", nargs="+", default=[f for f, p in FONTS.items() if p is None or p.exists()])
    parser.add_argument("--styles", nargs="+", default=sorted(STYLES))
    parser.add_argument("--reads", type=int, default=1, help="reads of each gallery, --every s apart (voted)")
    parser.add_argument("--every", type=int, default=5, help="seconds between reads (the pipeline's 5 s)")
    parser.add_argument("--stream", action="store_true", help="also time frames while a read runs")
    parser.add_argument("--stream-frames", type=int, default=150, help="frames timed after the first names")
    parser.add_argument("--upscale", type=float, default=UPSCALE, help="label strip enlargement (NameReader's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    summary: dict[str, object] = {"engine": "rapidocr", "size": args.size,
                                  "upscale": args.upscale,
                                  **accuracy(args, (w, h), NameReader(upscale=args.upscale))}
    if args.stream:
        summary["stream"] = stream(args, (w, h))
        print("stream:", summary["stream"], flush=True)
    print(json.dumps(summary) if args.json else summary)


if __name__ == "__main__":
    main()

"""Names read right from call galleries: each style x font, the label of every tile read by
:class:`emowidgets.names.NameReader` (RapidOCR) and compared with the text the tile shows.

Usage (the ``names`` extra installed):
    python benchmarks/names_ocr.py --participants 49 --size 1920x1080 --json
Prints per style/font and overall: names right %, ms per tile and per gallery; JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import time

from callgallery import FONTS, STYLES, build_call

from emowidgets.names import NameReader, clean_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=49)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--camera-off", type=int, default=4)
    parser.add_argument("--fonts", nargs="+", default=[f for f, p in FONTS.items() if p is None or p.exists()])
    parser.add_argument("--styles", nargs="+", default=sorted(STYLES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    reader = NameReader()
    rows, right, total, spent = [], 0, 0, 0.0
    for style in args.styles:
        for i, font in enumerate(args.fonts):
            call = build_call(args.participants, size, style=style, camera_off=args.camera_off, frames=1,
                              seed=i, font=font)
            start = time.perf_counter()
            read = reader.read(call.frames[0], call.tiles)
            took = time.perf_counter() - start
            # Zoom shows no label on a camera-off tile (the name is centred): those are not counted
            want = [(j, clean_name(call.shown[p])) for j, p in enumerate(call.seat[0])
                    if call.has_face[p] or style != "zoom"]
            ok = sum(read[j] == name for j, name in want)
            misses = [f"{name!r}->{read[j]!r}" for j, name in want if read[j] != name]
            rows.append({"style": style, "font": font, "right_pct": round(100 * ok / len(want), 1),
                         "tiles": len(want), "ms_per_tile": round(1000 * took / len(call.tiles), 1),
                         "ms_per_gallery": round(1000 * took), "misses": misses})
            right, total, spent = right + ok, total + len(want), spent + took
            print(f"{style:6s} {font:10s} {ok}/{len(want)} right, {1000 * took / len(call.tiles):.0f} ms/tile "
                  f"{misses}", flush=True)
    n_tiles = len(rows) * args.participants
    summary = {"engine": "rapidocr", "right_pct": round(100 * right / total, 1), "tiles": total,
               "ms_per_tile": round(1000 * spent / n_tiles, 1),
               "ms_per_gallery": round(1000 * spent / len(rows)), "size": args.size, "rows": rows}
    print(json.dumps(summary) if args.json else summary)


if __name__ == "__main__":
    main()

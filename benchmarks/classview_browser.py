"""Class view end to end: classroom("screen") in JupyterLab + headless Chromium, a call gallery shared as a tab.

    python benchmarks/classview_browser.py --faces 49 --size 1920x1080 --seconds 15 --json
    python benchmarks/classview_browser.py --faces 25 --size 1280x720 --source camera --style plain --json

The gallery (``faces`` participants in a call-like grid, ``benchmarks/callgallery.py``, one in ten cameras off;
``--style plain``: the old gap-less ``gallery_util`` grid) is built at run time. By default a tab plays it
and the page's own getDisplayMedia shares that tab (``tests/browser.py`` ``share_video_as_screen``), as a
teacher shares the call's window; ``--source camera`` plays it looped as Chromium's fake camera instead.
Processed fps: results drawn back over the preview per second; latency:
camera frame grabbed -> its result drawn, both in the page. ``per_face_hz_min``/``_median``: fresh
classifications (age 0) per second of the slowest / median face among those in at least 90 % of the window's
results. Last stdout line (with --json): one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import (
    JupyterLab,
    launch_chromium,
    launch_chromium_sharing,
    make_y4m,
    new_page,
    open_notebook,
    share_video_as_screen,
    write_notebook,
)
from callgallery import write_call_video
from gallery import cpu_name
from gallery_util import write_gallery_video
from live_browser import emit, figures, measure, per_face_hz

PAGE_JS = """() => ({boxes: [...document.querySelectorAll('.emow-camera .emow-box')].filter(b => !b.hidden).length,
  tiles: document.querySelectorAll('.emow-cv-tile:not(.emow-cv-absent)').length,
  presence: document.querySelector('.emow-cv-presence')?.textContent || '',
  status: document.querySelector('.emow-cv-status')?.textContent || '',
  grid: document.querySelector('.emow-grid-label')?.textContent || '',
  outlines: document.querySelectorAll('.emow-camera .emow-tile').length})"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=25)
    parser.add_argument("--size", default="1280x720", help="gallery and camera size")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of streaming before measuring")
    parser.add_argument("--model", default="fast", choices=["fast", "main"])
    parser.add_argument("--detector", default="gallery", choices=["gallery", "short", "full"],
                        help="classroom()'s detector (gallery: each call tile searched on its own)")
    parser.add_argument("--source", default="screen", choices=["screen", "camera"],
                        help="share a tab playing the gallery (screen), or play it as the fake camera")
    parser.add_argument("--style", default="zoom", choices=["zoom", "meet", "teams", "plain"])
    parser.add_argument("--clip-seconds", type=float, default=8.0, help="length of the looped gallery clip")
    parser.add_argument("--fps", type=int, default=25, help="fake camera frame rate")
    parser.add_argument("--max-in-flight", type=int, default=3)
    parser.add_argument("--quality", type=float, default=0.8)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory(prefix="emow-bench-") as tmp:
        root = Path(tmp)
        mp4 = root / "gallery.mp4"
        if args.style == "plain":
            write_gallery_video(args.faces, (width, height), mp4, seconds=args.clip_seconds, fps=args.fps)
            on = args.faces
        else:
            on = write_call_video(args.faces, (width, height), mp4, seconds=args.clip_seconds, fps=args.fps,
                                  style=args.style, camera_off=args.faces // 10).faces
        code = (f"import emowidgets\nroom = emowidgets.classroom({args.source!r}, model={args.model!r}, "
                f"detector={args.detector!r}, width={width}, height={height}, max_in_flight={args.max_in_flight}, "
                f"quality={args.quality})\nroom")
        with JupyterLab(root) as lab, sync_playwright() as p:
            name = write_notebook(root, "bench.ipynb", code)
            if args.source == "screen":
                browser = launch_chromium_sharing(p)
                shared = share_video_as_screen(browser, lab.url("files/gallery.mp4"), size=(width, height))
            else:
                y4m = make_y4m(mp4, root / "camera.y4m", seconds=args.clip_seconds, size=(width, height), fps=args.fps)
                browser = launch_chromium(p, y4m)
            page = new_page(browser, camera=args.source == "camera", viewport=(1400, 1000))
            open_notebook(page, lab, name)
            w = measure(page, lab, args.warmup, args.seconds, first_result_timeout=240)
            shown = page.evaluate(PAGE_JS)
            video = page.evaluate("() => { const v = document.querySelector('.emow-camera video');"
                                  " return [v.videoWidth, v.videoHeight]; }")
            load = os.getloadavg()[0]
            if args.source == "screen":
                shared.context.close()
            browser.close()

    faces = np.asarray(w.samples["faces"], float)
    out = {
        "faces": args.faces, "camera_on": on, "size": args.size, "source": args.source, "style": args.style,
        "camera_size": f"{video[0]}x{video[1]}", "model": args.model,
        "detector": args.detector, "max_in_flight": args.max_in_flight,
        **figures(w),
        **per_face_hz(w),
        "faces_per_frame": round(float(faces.mean()), 2) if len(faces) else 0.0,
        "faces_min": int(faces.min()) if len(faces) else 0,
        "faces_max": int(faces.max()) if len(faces) else 0,
        "boxes_shown": shown["boxes"], "tiles_present": shown["tiles"], "presence": shown["presence"],
        "kernel_rss_mb": round(w.kernel_rss_mb, 1),
        "startup_s": round(w.startup_s, 1),
        "load_avg_1m": round(load, 2),
        "cpus": os.cpu_count(),
        "status": shown["status"], "grid": shown["grid"], "tile_outlines": shown["outlines"],
        "cpu": cpu_name(),
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

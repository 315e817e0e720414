"""Live widget end to end: JupyterLab + headless Chromium, a video clip as the fake camera.

    python benchmarks/live_browser.py --clip ../shared/assets/clips/single_face.mp4 --seconds 10 --json

Latency is measured in the page: from the moment the widget grabs a camera frame to the moment the result for
that frame is drawn over the preview. ``processed_ratio`` is processed over camera frames per second, ``level``
the quality level of the last result drawn and ``frame_size`` the size of the last frame sent (frames are sized
to the faces). With ``--echo`` there is no pipeline: the kernel acks each frame on receipt, and
``ack_rtt_ms_*`` is the comm round trip alone, the floor under the live latency. Last stdout line (with
--json): one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import (
    JupyterLab,
    launch_chromium,
    make_y4m,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    write_notebook,
)

WINDOW_JS = """([s0, s1]) => { const s = document.querySelector('.emow-camera').emowStats;
  return {lat: s.latencies.slice(s0.n, s1.n), faces: s.faces.slice(s0.n, s1.n), ids: s.ids.slice(s0.n, s1.n),
          kernel: s.kernelMs.slice(s0.n, s1.n),
          encode: s.encodeMs.slice(s0.e, s1.e), ack: s.ackMs.slice(s0.a, s1.a)}; }"""
STATS_JS = """() => { const s = document.querySelector('.emow-camera').emowStats;
  return {t: performance.now(), camera: s.cameraFrames, sent: s.sent, results: s.results, n: s.latencies.length,
          e: s.encodeMs.length, a: s.ackMs.length, fresh: {...s.fresh}, level: s.level, size: s.frameSize,
          encoder: s.encoder}; }"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def emit(out: dict, as_json: bool) -> None:
    """Print the results: one JSON object as the last line, or an aligned table."""
    if as_json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key:>16}: {value}")


def median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


@dataclasses.dataclass
class Window:
    """What the page measured while streaming: counters at both ends of the window and the per-result samples
    in between, seconds from Run All to the first result, the kernel's RSS at the end."""

    s0: dict[str, Any]
    s1: dict[str, Any]
    samples: dict[str, list[float]]
    startup_s: float
    kernel_rss_mb: float


def measure(page: Any, lab: JupyterLab, warmup: float, seconds: float, first_result_timeout: float,
            counter: str = "results") -> Window:
    """Run the open notebook, wait for the first result (or ``counter``: ``"acked"`` frames), stream ``warmup``
    seconds, then measure ``seconds``."""
    t_start = time.monotonic()
    run_all(page)
    try:
        poll(page, f"() => document.querySelector('.emow-camera')?.emowStats?.{counter} > 0",
             timeout=first_result_timeout)
    except Exception as exc:
        raise RuntimeError(f"no results; outputs: {outputs_text(page)}") from exc
    startup_s = time.monotonic() - t_start
    page.wait_for_timeout(warmup * 1000)
    s0 = page.evaluate(STATS_JS)
    page.wait_for_timeout(seconds * 1000)
    s1 = page.evaluate(STATS_JS)
    samples = page.evaluate(WINDOW_JS, [s0, s1])
    kernel_rss = max((rss_mb(pid) for pid in lab.kernel_pids()), default=float("nan"))
    return Window(s0, s1, samples, startup_s, kernel_rss)


def figures(w: Window) -> dict[str, Any]:
    """Rates (per second), latency percentiles (ms) and medians of the window, as the JSON reports them."""
    dt = (w.s1["t"] - w.s0["t"]) / 1000
    lat = np.asarray(w.samples["lat"], float)
    processed, camera = (w.s1["results"] - w.s0["results"]) / dt, (w.s1["camera"] - w.s0["camera"]) / dt
    return {
        "seconds": round(dt, 2),
        "processed_fps": round(processed, 2),
        "camera_fps": round(camera, 2),
        "processed_ratio": round(processed / camera, 2) if camera else None,
        "sent_fps": round((w.s1["sent"] - w.s0["sent"]) / dt, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
        "kernel_ms_p50": median(w.samples["kernel"]),
        "encode_ms_p50": median(w.samples["encode"]),
        "ack_rtt_ms_p50": median(w.samples["ack"]),
        "ack_rtt_ms_p95": round(float(np.percentile(w.samples["ack"], 95)), 1) if w.samples["ack"] else None,
        "level": w.s1["level"],
        "frame_size": "x".join(str(v) for v in w.s1["size"]),
        "encoder": w.s1["encoder"],
    }


def per_face_hz(w: Window, present: float = 0.9) -> dict[str, float | None]:
    """Fresh classifications per second of each face present in at least ``present`` of the window's results
    (results where its age was 0): the slowest face's rate and the median."""
    ids = w.samples["ids"]
    counts: dict[str, int] = {}
    for frame in ids:
        for tid in set(frame):
            counts[str(tid)] = counts.get(str(tid), 0) + 1
    steady = [tid for tid, n in counts.items() if ids and n >= present * len(ids)]
    dt = (w.s1["t"] - w.s0["t"]) / 1000
    rates = [(w.s1["fresh"].get(tid, 0) - w.s0["fresh"].get(tid, 0)) / dt for tid in steady]
    return {"per_face_hz_min": round(min(rates), 2) if rates else None,
            "per_face_hz_median": round(float(np.median(rates)), 2) if rates else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before measuring")
    parser.add_argument("--model", default="main")
    parser.add_argument("--detector", default="short", choices=["short", "full"])
    parser.add_argument("--size", default="640x480", help="camera size (the clip is scaled to it)")
    parser.add_argument("--max-in-flight", type=int, default=3)
    parser.add_argument("--quality", type=float, default=0.8)
    parser.add_argument("--echo", action="store_true", help="no pipeline: the kernel acks each frame on receipt, "
                        "so ack_rtt_ms_* is the comm round trip alone (frames at --echo-size)")
    parser.add_argument("--echo-size", default="320x240", help="camera (and frame) size in --echo mode")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    width, height = (int(v) for v in (args.echo_size if args.echo else args.size).split("x"))

    with tempfile.TemporaryDirectory(prefix="emow-bench-") as tmp:
        root = Path(tmp)
        y4m = make_y4m(args.clip, root / "camera.y4m", seconds=8, size=(width, height))
        code = (f"import emowidgets\nview = emowidgets.live(model={args.model!r}, detector={args.detector!r}, "
                f"width={width}, height={height}, max_in_flight={args.max_in_flight}, quality={args.quality})\n"
                "view")
        if args.echo:
            code = ("from emowidgets.widgets import CameraWidget\n"
                    f"CameraWidget(on_frame=lambda *_: None, width={width}, height={height}, "
                    f"max_in_flight={args.max_in_flight}, quality={args.quality})")
        name = write_notebook(root, "bench.ipynb", code)
        with JupyterLab(root) as lab, sync_playwright() as p:
            browser = launch_chromium(p, y4m)
            page = new_page(browser, camera=True)
            open_notebook(page, lab, name)
            w = measure(page, lab, args.warmup, args.seconds, first_result_timeout=180,
                        counter="acked" if args.echo else "results")
            status = page.text_content(".emow-status")
            browser.close()

    faces = w.samples["faces"]
    out = {
        "clip": args.clip.name, "size": f"{width}x{height}", "model": "none (echo)" if args.echo else args.model,
        "max_in_flight": args.max_in_flight,
        **figures(w),
        "faces_per_frame": round(float(np.mean(faces)), 2) if faces else 0.0,
        "kernel_rss_mb": round(w.kernel_rss_mb, 1),
        "startup_s": round(w.startup_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "status": status,
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

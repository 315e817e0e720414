"""What ``emowidgets report`` costs on a long, crowded class log (issue 26, defect 7).

Writes a class log with the project's own :class:`~emowidgets.classlog.ClassLog` in a temporary folder
(``--rows`` rows, ``--ids`` track ids: ``--faces`` faces a frame, each face slot changing its track id as
often as needed to reach ``--ids``; every tenth track named), then times ``python -m emowidgets report`` on it
under ``/usr/bin/time -v`` (wall seconds, peak RSS) and reads the embedded PNGs' sizes from the HTML.

The report runs in a child process with this process's environment, so ``PYTHONPATH=/other/checkout`` measures
that checkout's report (before/after). Prints one JSON object on its last stdout line::

    python benchmarks/report_cost.py --rows 1000000 --ids 5000 --json
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emowidgets.classlog import ClassLog
from emowidgets.vocab import EMOTIONS, FrameResult

START_MS = 1_700_000_000_000


def write_log(path: Path, rows: int, ids: int, faces: int, seed: int = 0) -> None:
    """A class log of ``rows`` rows (``faces`` a frame, one frame a second) over ``ids`` track ids."""
    rng = np.random.default_rng(seed)
    frames = -(-rows // faces)
    ids_per_slot = -(-ids // faces)
    frames_per_id = -(-frames // ids_per_slot)
    boxes = np.tile(np.array([[10, 10, 40, 40]], np.float32), (faces, 1))
    with ClassLog(path, row_group_rows=65_536) as log:
        left = rows
        for f in range(frames):
            n = min(faces, left)
            left -= n
            track_ids = np.arange(n) * ids_per_slot + f // frames_per_id
            probs = rng.dirichlet(np.ones(len(EMOTIONS)), n).astype(np.float32)
            result = FrameResult(seq=f, timestamp_ms=f * 1000, width=640, height=480, boxes=boxes[:n],
                                 scores=np.ones(n, np.float32), track_ids=track_ids, probs=probs, raw_probs=probs,
                                 embeddings=np.zeros((n, 0), np.float32), labels=EMOTIONS,
                                 crops=np.zeros((0, 48, 48), np.float32), timings={})
            names = {int(t): f"Student {int(t)}" for t in track_ids if t % 10 == 0}
            log.log(result, names, time_ms=START_MS + 1000 * f)


def png_sizes(page: str) -> list[list[int]]:
    """Width and height of each PNG embedded in ``page``."""
    sizes = []
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            sizes.append(list(img.size))
    return sizes


def measure(rows: int, ids: int, faces: int, suffix: str) -> dict[str, Any]:
    """Write the log, run the report under ``/usr/bin/time -v``, return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / f"lesson{suffix}"
        started = time.perf_counter()
        write_log(log, rows, ids, faces)
        write_s = time.perf_counter() - started
        run = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "emowidgets", "report", str(log)],
                             capture_output=True, text=True, env=os.environ.copy(), check=False)
        if run.returncode:
            raise SystemExit(f"report failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", run.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
        assert wall is not None and rss is not None, run.stderr[-2000:]
        hours, minutes, seconds = int(wall[1] or 0), int(wall[2]), float(wall[3])
        html = log.with_suffix(".html")
        page = html.read_text(encoding="utf-8")
        return {"rows": rows, "track_ids": ids, "faces_per_frame": faces, "format": suffix.lstrip("."),
                "log_mb": round(log.stat().st_size / 1e6, 2), "write_log_s": round(write_s, 1),
                "report_wall_s": round(3600 * hours + 60 * minutes + seconds, 1),
                "report_peak_rss_mb": round(int(rss[1]) / 1024), "html_mb": round(html.stat().st_size / 1e6, 2),
                "png_sizes": png_sizes(page), "table_rows": page.count("<tr>") - 1,
                "emowidgets": str(Path(__import__("emowidgets").__file__).parent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ids", type=int, default=5_000)
    parser.add_argument("--faces", type=int, default=40, help="faces a frame")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    figures = measure(args.rows, args.ids, args.faces, f".{args.format}")
    if not args.json:
        for key, value in figures.items():
            print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""Child process of ``test_classlog.py``, run in its own mount namespace over a small tmpfs (a nearly full disk):
a class view logs 5 faces a frame for 1,500 frames to ``FULL/log.SUFFIX``, then to ``ROOMY`` when switched on
again. Prints one JSON object of what it saw."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from emowidgets.classlog import read_log
from emowidgets.classview import ClassView
from emowidgets.pipeline import Pipeline


def main(photo: str, full: str, roomy: str, suffix: str) -> None:
    with Pipeline.create_from_options(warmup=False) as p:
        result = p.process_image(Path(photo))
    view = ClassView(log_path=f"{full}/log{suffix}", min_frames=1)
    view.names = {"0": "Ana"}
    view.logging = True
    errors, notices = 0, set()
    for k in range(1500):
        try:
            view.update(result, now=1000.0 + k)
        except Exception:
            errors += 1
        if view.notice:
            notices.add(view.notice)
    chart_s = view.history[-1][0] - view.history[0][0]
    readable = -1
    with contextlib.suppress(Exception):  # a Parquet file without its end: unreadable
        readable = len(read_log(f"{full}/log{suffix}")["time_ms"])
    view.log_path = f"{roomy}/saved{suffix}"
    view.logging = True  # the kept rows are written first
    view.logging = False
    saved = read_log(f"{roomy}/saved{suffix}")
    view.logging = True  # on and off again: appends, keeps what was there
    view.update(result, now=5000.0)
    view.logging = False
    again = read_log(f"{roomy}/saved{suffix}")
    print(json.dumps({"errors": errors, "notices": sorted(notices), "chart_s": chart_s, "readable": readable,
                      "saved": len(saved["time_ms"]), "names": sorted(set(saved["name"])),
                      "again": len(again["time_ms"]), "logging": view.logging, "faces": len(result.boxes)}))


if __name__ == "__main__":
    main(*sys.argv[1:])

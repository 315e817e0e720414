"""Child process of ``test_classlog.py``: class logs that hit a file-size limit (``RLIMIT_FSIZE``, SIGXFSZ
ignored: a write past it fails with EFBIG, as a full disk fails with ENOSPC), set after the pipeline is made.

For each of ``.parquet`` and ``.csv``: a class view logs 3 faces a frame for 1,500 frames under a limit that holds
one row group (:data:`LIMITS`): what was written must stay readable, the rest kept. Then a view is closed while
its log cannot write its last rows: they must stay kept, and ``save_log`` writes them with the limit lifted.
Prints one JSON object."""

from __future__ import annotations

import json
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from emowidgets.classlog import read_log
from emowidgets.classview import ClassView
from emowidgets.errors import DataFileError
from emowidgets.pipeline import Pipeline

LIMITS = {".parquet": 12_000, ".csv": 500_000}  # one flush of 2,049 rows fits, two do not


def limit(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))


def rows_in(path: Path) -> int:
    """Rows of a readable log; -1 if it is unreadable, -2 if there is no file."""
    if not path.exists():
        return -2
    try:
        return len(read_log(path)["time_ms"])
    except DataFileError:
        return -1


def main(photo: str, folder: str) -> None:
    with Pipeline.create_from_options(warmup=False) as p:
        result = p.process_image(Path(photo))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    seen: dict[str, Any] = {"faces": len(result.boxes)}
    for suffix in (".parquet", ".csv"):
        full, closing, saved = (Path(folder) / f"{name}{suffix}" for name in ("full", "closing", "saved"))
        limit(LIMITS[suffix])
        view = ClassView(log_path=str(full), min_frames=1)
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
        kept = view.unsaved_rows
        view.close()
        limit(600)  # the next log's last rows (300 frames, under one row group) do not fit
        second = ClassView(log_path=str(closing), min_frames=1)
        second.logging = True
        for k in range(300):
            second.update(result, now=1000.0 + k)
        second.close()
        kept_at_close = second.unsaved_rows
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        saved_rows = second.save_log(saved)
        seen[suffix] = {"errors": errors, "notices": sorted(notices), "logging": view.logging, "kept": kept,
                        "readable": rows_in(full), "kept_at_close": kept_at_close, "closing": rows_in(closing),
                        "saved_rows": saved_rows, "saved": rows_in(saved),
                        "names": sorted(set(read_log(full)["name"])) if rows_in(full) > 0 else []}
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:])

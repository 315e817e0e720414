"""close() from any thread at any time: a child process closes pipelines under running threads for 200 rounds
and must exit cleanly (before issue 26 it died with SIGSEGV in 2-3 of 5 runs of 30 rounds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import IMAGES, ROOT

HERE = Path(__file__).resolve().parent


def test_close_under_running_threads_never_crashes_200_rounds():
    run = subprocess.run([sys.executable, str(HERE / "close_stress.py"), str(IMAGES / "single_obama_smiling.jpg"),
                          "200"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, f"rc {run.returncode}: {run.stderr[-2000:]}"
    ok, rounds, refused, results = run.stdout.split()[-4:]
    assert ok == "ok" and rounds == "200"
    assert int(refused) == 4 * 200 and int(results) > 200  # every caller ended on a ClosedError, none hung

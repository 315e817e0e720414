"""close() from any thread at any time: a child process closes pipelines under running threads for 200 rounds
and must exit cleanly (before issue 26 it died with SIGSEGV in 2-3 of 5 runs of 30 rounds)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import simplejpeg
from conftest import IMAGES, ROOT

from emowidgets.errors import ClosedError
from emowidgets.pipeline import Pipeline
from emowidgets.vocab import EMOTIONS

HERE = Path(__file__).resolve().parent


def test_close_under_running_threads_never_crashes_200_rounds():
    run = subprocess.run([sys.executable, str(HERE / "close_stress.py"), str(IMAGES / "single_obama_smiling.jpg"),
                          "200"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, f"rc {run.returncode}: {run.stderr[-2000:]}"
    ok, rounds, refused, results = run.stdout.split()[-4:]
    assert ok == "ok" and rounds == "200"
    assert int(refused) == 4 * 200 and int(results) > 200  # every caller ended on a ClosedError, none hung


def test_a_slow_frame_keeps_the_detector_until_it_returns(caplog):
    """A frame still inside when ``close`` gives up waiting (Session and worker waited 5 s, then released the
    detector under it): close returns, the frame finishes with its result, and only then is the detector
    released, by the call that returns last."""
    rgb = simplejpeg.decode_jpeg((IMAGES / "single_obama_smiling.jpg").read_bytes())
    inside, closed, released = threading.Event(), threading.Event(), []

    def slow_head(embeddings, base_probs, track_ids):  # a slow adapter: holds the frame until close returned
        inside.set()
        closed.wait(30)
        return base_probs, EMOTIONS

    pipeline = Pipeline.create_from_options(warmup=False)
    real_close = pipeline.detector.close
    pipeline.detector.close = lambda: (released.append(time.monotonic()), real_close())  # a spy; still releases
    pipeline.head = slow_head
    results = []
    worker = threading.Thread(target=lambda: results.append((pipeline.process_array(rgb), time.monotonic())))
    worker.start()
    assert inside.wait(60)
    with caplog.at_level(logging.WARNING, "emowidgets.pipeline"):
        pipeline.close(timeout=0.5)
    assert "still being processed" in caplog.text and released == []  # before: released under the running frame
    with pytest.raises(ClosedError, match="closed"):
        pipeline.process_array(rgb)
    closed.set()
    worker.join(30)
    assert len(results) == 1 and results[0][0].dominant == ["happy"]
    assert len(released) == 1 and released[0] >= results[0][1] - 0.1  # released once, as the frame returned

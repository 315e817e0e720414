"""No native log noise: a pipeline's MediaPipe/LiteRT/XLA start-up lines go to Python logging, not to stderr."""

from __future__ import annotations

import subprocess
import sys

from conftest import CLIPS, IMAGES

RUN = """
import logging, sys
if sys.argv[2] == "debug":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
from emowidgets.detect import DetectorOptions
from emowidgets.pipeline import Pipeline, PipelineOptions

from emowidgets.sources import VideoFileSource, pipeline_options

photo = open(sys.argv[1], "rb").read()
for model in ("short", "full"):  # the full-range model adds its own "sparsity" warnings
    with Pipeline.create_from_options(PipelineOptions(detector=DetectorOptions(model=model))) as pipeline:
        print("faces", len(pipeline.process_bytes(photo, seq=2).boxes))
# LiteRT's alignment warning comes at a random inference: many tiled detections give it its chances
with Pipeline.create_from_options(pipeline_options("gallery", "fast")) as pipeline:
    for seq, (rgb, ts) in zip(range(20), VideoFileSource(sys.argv[3], realtime=False).frames()):
        pipeline.process_array(rgb, seq, ts)
print("gallery done")
"""


def _run(level: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN, str(IMAGES / "single_man_smiling.jpg"), level,
                           str(CLIPS / "multi_face.mp4")],
                          capture_output=True, text=True, timeout=300)


def test_pipeline_start_up_and_shutdown_write_nothing_to_stderr():
    proc = _run("quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n").count("faces 1") == 2 and "gallery done" in proc.stdout
    assert proc.stderr == ""


def test_the_native_lines_reach_python_logging_at_debug():
    proc = _run("debug")
    assert proc.returncode == 0, proc.stderr
    assert "emowidgets.native DEBUG INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in proc.stdout
    assert "emowidgets.native DEBUG WARNING: [model_load.cc:402] Sparsity tensors" in proc.stdout
    assert proc.stderr == ""

"""No native log noise: a pipeline's MediaPipe/LiteRT/XLA start-up lines go to Python logging, not to stderr."""

from __future__ import annotations

import subprocess
import sys

from conftest import CLIPS, IMAGES

# Logging goes to a file, so anything on stderr came from native code (or an unhandled error), and no log line
# from another thread (JAX's compiler) can split the printed results on stdout.
RUN = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, filename=sys.argv[3], format="%(name)s %(levelname)s %(message)s")
from emowidgets.detect import DetectorOptions
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.sources import VideoFileSource, pipeline_options

photo = open(sys.argv[1], "rb").read()
for model in ("short", "full"):  # the full-range model adds its own "sparsity" warnings
    options = PipelineOptions(detector=DetectorOptions(model=model), classifier=ClassifierOptions(model="fast"))
    with Pipeline.create_from_options(options) as pipeline:
        print("faces", len(pipeline.process_bytes(photo).boxes))
# LiteRT's alignment warning comes at a random inference: many tiled detections give it its chances
with Pipeline.create_from_options(pipeline_options("gallery", "fast"), warmup=False) as pipeline:
    for seq, (rgb, ts) in zip(range(20), VideoFileSource(sys.argv[2], realtime=False).frames()):
        pipeline.process_array(rgb, seq=seq, timestamp_ms=ts)
print("gallery done")
"""


def test_pipelines_write_nothing_to_stderr_and_the_native_lines_reach_logging_at_debug(tmp_path):
    log = tmp_path / "debug.log"
    proc = subprocess.run([sys.executable, "-c", RUN, str(IMAGES / "single_man_smiling.jpg"),
                           str(CLIPS / "multi_face.mp4"), str(log)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["faces 1", "faces 1", "gallery done"]
    assert proc.stderr == ""
    logged = log.read_text()
    assert "emowidgets.native DEBUG INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in logged
    assert "emowidgets.native DEBUG WARNING: [model_load.cc:402] Sparsity tensors" in logged

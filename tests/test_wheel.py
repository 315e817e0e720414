"""The wheel is complete: built from this checkout, installed into a fresh virtual environment with the pinned
dependencies, it processes a real photo from another directory, offline, with no source checkout on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import IMAGES, ROOT

pytestmark = pytest.mark.slow

# Run inside the fresh environment: sockets are refused (audit hook), so anything that reaches for the network
# fails loudly; the package must come from site-packages and find its model files there.
RUN_OFFLINE = """
import json, sys

def _no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        raise RuntimeError(f"network access at run time: {event} {args!r:.80}")

sys.addaudithook(_no_network)
import emowidgets
from emowidgets.assets import weights_dir
from emowidgets.pipeline import Pipeline

with Pipeline.create_from_options(warmup=False) as pipeline:
    result = pipeline.process_image(open(sys.argv[1], "rb").read())
print(json.dumps({"package": emowidgets.__file__, "weights": str(weights_dir()), "dominant": result.dominant}))
"""


def _offline_prefix() -> list[str]:
    """``unshare -rn`` (a new network namespace with no interfaces) where the machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def test_wheel_installs_into_a_fresh_venv_and_runs_offline(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = dist.glob("emowidgets-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("emotion_main.safetensors", "emotion_fast.safetensors", "face_detection_short_range.tflite",
                 "face_detection_full_range_sparse.tflite", "LICENSE-mediapipe-Apache-2.0.txt"):
        assert f"emowidgets/weights/{name}" in names
    assert {"emowidgets/static/camera.js", "emowidgets/static/package.json", "emowidgets/configs/main.json"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The pinned versions, from the registry or pip's cache; no .pyc compilation (it only costs time here).
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile",
                    "-c", str(ROOT / "constraints.txt"), str(wheel)], check=True, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(elsewhere), "LANG": "C.UTF-8"}
    proc = subprocess.run([*_offline_prefix(), str(python), "-I", "-c", RUN_OFFLINE,
                           str(IMAGES / "single_man_smiling.jpg")],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    site = venv.resolve()
    assert Path(out["package"]).resolve().is_relative_to(site) and Path(out["weights"]).resolve().is_relative_to(site)
    assert out["dominant"] == ["happy"]

"""The widgets' browser code that needs no browser (static/camera.js's frame sizing), unit-tested with Node's own
runner: every ``tests/js/*.test.mjs`` under ``node --test``; a failure shows node's report."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

JS_TESTS = sorted((Path(__file__).parent / "js").glob("*.test.mjs"))


def test_node_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs): the tests/js unit tests did not run")
    assert JS_TESTS, "no tests/js/*.test.mjs found"
    proc = subprocess.run([node, "--test", *map(str, JS_TESTS)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"node --test failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"

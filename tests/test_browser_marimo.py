"""End to end (issue 25): the quickstart in marimo, the other notebook that hosts anywidget, in Chromium with
single_face.mp4 as the camera. ``marimo run`` serves ``notebooks/quickstart_marimo.py`` as its app."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request

import pytest
from browser import BOX, BROWSER_MARKS, SCREENSHOT_DIR, free_port, new_page, server_env, terminate
from conftest import ROOT

pytestmark = BROWSER_MARKS
pytest.importorskip("marimo")


@pytest.fixture(scope="module")
def marimo_app(tmp_path_factory):
    """``marimo run`` on the quickstart, headless, on a free port; yields its URL."""
    root = tmp_path_factory.mktemp("marimo")
    port = free_port()
    log = root / "marimo.log"
    with log.open("wb") as out:
        notebook = ROOT / "notebooks" / "quickstart_marimo.py"
        proc = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(notebook),
                                 "--headless", "--host", "127.0.0.1", "--port", str(port), "--no-token"],
                                cwd=root, env=server_env(root), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                terminate(proc)
                pytest.fail(f"marimo did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield url
    terminate(proc)


def wait_text(locator, pattern: str, timeout: float = 120.0) -> str:
    """The first element's text once it matches ``pattern`` (Playwright locators look inside marimo's shadow roots)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if locator.count():
            text = locator.first.text_content() or ""
            if re.search(pattern, text):
                return text
        time.sleep(0.5)
    raise AssertionError(f"no match for {pattern!r} within {timeout} s; last text {text!r}")


def test_quickstart_in_marimo_shows_face_box_and_gauge(marimo_app, browser):
    page = new_page(browser, camera=True)
    try:
        page.goto(marimo_app)
        label = wait_text(page.locator(f"{BOX} .emow-label"), r"\w+ \d\.\d\d")
        faces = wait_text(page.locator(".emow-gauge-faces"), r"^[1-9]\d* faces?$")  # the gauge follows the stream
        dominant = wait_text(page.locator(".emow-gauge-dominant"), r"^(?!No Face$)\w+")
        assert label.split()[0].lower() in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        assert faces == "1 face" and dominant
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and "Error" not in body
        page.screenshot(path=str(SCREENSHOT_DIR / "marimo.png"))
    finally:
        page.close()

"""End to end: the quickstart notebook in JupyterLab + headless Chromium, single_face.mp4 as the camera."""

from __future__ import annotations

import contextlib

from browser import (
    BOX,
    BROWSER_MARKS,
    SCREENSHOT_DIR,
    copy_notebook,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    write_notebook,
)
from conftest import ROOT
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = BROWSER_MARKS

SCREENSHOT = SCREENSHOT_DIR / "live.png"
VALUES_JS = "[...document.querySelectorAll('.emow-gauge-value')].map(e => e.textContent).join(' ')"


def gauge_state(page) -> dict:
    return page.evaluate(f"""() => ({{
        fps: parseFloat(document.querySelector('.emow-gauge-fps').dataset.value),
        values: {VALUES_JS},
        dominant: document.querySelector('.emow-gauge-dominant').textContent }})""")


def test_quickstart_shows_face_box_and_gauge(lab, browser):
    name = copy_notebook(ROOT / "notebooks" / "quickstart.ipynb", lab.root)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        try:
            label = poll(page, f"() => document.querySelector('{BOX} .emow-label')?.textContent", timeout=120)
        except Exception as exc:
            raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
        assert label.split()[0] in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        assert page.text_content(".emow-status") == "running"
        first = gauge_state(page)
        poll(page, f"""(first) => parseFloat(document.querySelector('.emow-gauge-fps').dataset.value) > 0
                       && {VALUES_JS} !== first.values""", arg=first, timeout=20)
        later = gauge_state(page)
        assert later["fps"] > 0
        assert later["dominant"] not in ("", "no face")
        poll(page, "() => document.querySelector('.emow-camera').emowStats.results > 20", timeout=20)
        with contextlib.suppress(PlaywrightTimeout):  # the clip turns to a smile (and loops every 7 s)
            poll(page, "() => document.querySelector('.emow-gauge-dominant').textContent === 'happy'", timeout=10)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.locator(".emow-live").screenshot(path=str(SCREENSHOT))
    finally:
        page.context.close()
        lab.kill_kernels()


def test_camera_permission_denied_is_shown(lab, browser):
    code = "from emowidgets.widgets import CameraWidget\nCameraWidget()"
    name = write_notebook(lab.root, "denied.ipynb", code)
    page = new_page(browser, camera=False)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        page.wait_for_selector(".emow-status[data-status='permission denied']", timeout=60000)
        assert "NotAllowedError" in page.text_content(".emow-status")
        assert page.query_selector(BOX) is None
    finally:
        page.context.close()
        lab.kill_kernels()


def test_text_transport_boxes_the_face(lab, browser):
    """The base64 frame transport (what the kernel switches to where buffers are lost) end to end."""
    code = "import emowidgets\nview = emowidgets.live(model='fast', transport='text')\nview"
    name = write_notebook(lab.root, "text_transport.ipynb", code)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        try:
            poll(page, f"() => document.querySelector('{BOX} .emow-label')?.textContent", timeout=120)
        except Exception as exc:
            raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
        poll(page, "() => document.querySelector('.emow-camera').emowStats.results > 5", timeout=20)
        stats = page.evaluate("() => document.querySelector('.emow-camera').emowStats")
        assert stats["sentAsText"] == stats["sent"] > 5  # every frame went as base64 text
    finally:
        page.context.close()
        lab.kill_kernels()

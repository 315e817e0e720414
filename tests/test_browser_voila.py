"""Voilà: notebooks/classroom_app.ipynb served as an app in headless Chromium, the 2x2 gallery clip as the fake
camera: the class view's tiles appear and no code is shown."""

from __future__ import annotations

import json

from browser import BROWSER_MARKS, SCREENSHOT_DIR, Voila, launch_chromium, make_y4m, new_page, poll
from conftest import CLIPS, ROOT
from playwright.sync_api import sync_playwright

pytestmark = BROWSER_MARKS

SCREENSHOT = SCREENSHOT_DIR / "voila_classview.png"
# Boxes are percent-positioned on the preview's stage: they must land on the video, whatever the page width.
BOXES_OUTSIDE_VIDEO_JS = """() => {
  const v = document.querySelector('.emow-camera video').getBoundingClientRect();
  return [...document.querySelectorAll('.emow-box:not([hidden])')].map(b => b.getBoundingClientRect())
    .filter(b => b.left < v.left - 1 || b.right > v.right + 1 || b.top < v.top - 1 || b.bottom > v.bottom + 1)
    .map(b => [Math.round(b.left), Math.round(b.top), Math.round(b.right), Math.round(b.bottom)]); }"""


def test_voila_serves_the_class_view_app_and_tiles_appear(tmp_path):
    y4m = make_y4m(CLIPS / "multi_face.mp4", tmp_path / "gallery.y4m", seconds=10.0, fps=25)
    # The shipped app, with the fake camera instead of a window share (headless Chromium cannot pick a window).
    notebook = json.loads((ROOT / "notebooks" / "classroom_app.ipynb").read_text())
    (code,) = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    code["source"] = "".join(code["source"]).replace('classroom("screen")', 'classroom("camera", model="fast")')
    assert 'classroom("camera"' in code["source"]
    app = tmp_path / "app"
    app.mkdir()
    (app / "classroom_app.ipynb").write_text(json.dumps(notebook))
    with Voila(app / "classroom_app.ipynb") as voila, sync_playwright() as p:
        browser = launch_chromium(p, y4m)
        page = new_page(browser, camera=True, viewport=(1400, 1000))
        try:
            page.goto(voila.base + "/")
            try:
                poll(page, "() => document.querySelectorAll('.emow-cv-tile').length >= 4", timeout=180)
            except Exception as exc:
                body = page.evaluate("() => document.body.innerText.slice(0, 3000)")
                raise AssertionError(f"no tiles; page: {body}; log: {voila.log.read_text()[-3000:]}") from exc
            assert page.text_content(".emow-cv-status") == "running"
            assert page.text_content(".emow-cv-presence").startswith("4 present")
            shown = page.evaluate("() => document.body.innerText")
            assert "classroom(" not in shown  # an app: no code shown
            assert "Voil" not in shown and "serve this notebook" not in shown  # nor words for the notebook's author
            assert "pick the window that shows your call's gallery view" in shown  # words for the teacher
            poll(page, "() => document.querySelectorAll('.emow-box:not([hidden])').length >= 4", timeout=20)
            outside = page.evaluate(BOXES_OUTSIDE_VIDEO_JS)
            assert outside == [], f"face boxes drawn off the video: {outside}"
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            page.context.close()
            browser.close()

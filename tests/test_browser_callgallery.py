"""End to end (issue 21): a 7x7 video-call gallery shared as the screen into ``classroom("screen")`` in JupyterLab.

The page's own ``getDisplayMedia`` (camera.js, source ``"screen"``) captures a tab that plays the gallery video
(``launch_chromium_sharing`` + ``share_video_as_screen``). The kernel finds the call's tile grid and the page
draws it: one ``.emow-tile`` outline per call tile and the ``.emow-grid-label``; with the ``names`` extra (``make
install``), the class view's tiles take the names the call prints (OCR in the kernel, on its own thread).

The gallery is call-like (``benchmarks/callgallery.py``: gaps, name labels, a speaker border, 4 cameras off).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from browser import (
    BROWSER_MARKS,
    SCREENSHOT_DIR,
    JupyterLab,
    launch_chromium_sharing,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    share_video_as_screen,
    write_notebook,
)
from conftest import ROOT
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(ROOT / "benchmarks"))
from callgallery import write_call_video

from emowidgets.names import clean_name

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]

SIZE = (1920, 1080)
CODE = 'import emowidgets\nroom = emowidgets.classroom("screen", width=1920, height=1080)\nroom'
STATS = "document.querySelector('.emow-camera')?.emowStats"
TILES = ".emow-camera .emow-tile:not([hidden])"
SCREENSHOT = SCREENSHOT_DIR / "callgallery.png"


def set_grid(page, value: str) -> None:
    """Type ``value`` into the class view's gallery-grid box and press Enter."""
    page.fill(".emow-cv-grid-input", value)
    page.press(".emow-cv-grid-input", "Enter")


def test_shared_7x7_gallery_shows_its_call_grid(tmp_path):
    with JupyterLab(tmp_path / "lab") as lab, sync_playwright() as p:
        call = write_call_video(49, SIZE, lab.root / "gallery.mp4", seconds=6, fps=15, camera_off=4)
        browser = launch_chromium_sharing(p)
        shared = share_video_as_screen(browser, lab.url("files/gallery.mp4"), size=SIZE)
        page = new_page(browser, camera=False, viewport=(1400, 1000))
        try:
            open_notebook(page, lab, write_notebook(lab.root, "callgallery.ipynb", CODE))
            run_all(page)

            # The share: the page's getDisplayMedia got the gallery tab at its full size, and frames reach the
            # kernel (the view's status comes from the kernel's session).
            try:
                poll(page, f"() => {STATS}?.results > 0", timeout=180)
            except Exception as exc:
                status = page.evaluate("() => document.querySelector('.emow-status')?.textContent")
                raise AssertionError(f"no result came back; camera status {status!r}; "
                                     f"outputs: {outputs_text(page)}") from exc
            track = page.evaluate("""() => { const t = document.querySelector('.emow-camera video')
                .srcObject.getVideoTracks()[0]; return {surface: t.getSettings().displaySurface,
                width: t.getSettings().width, height: t.getSettings().height}; }""")
            assert track == {"surface": "browser", "width": SIZE[0], "height": SIZE[1]}, track
            assert page.evaluate(f"() => {STATS}.sent") > 0
            assert page.text_content(".emow-cv-status") == "running"
            # how the share runs, for docs/testing-screen-share.md (pytest -s)
            print("share:", page.evaluate(f"() => ({{cameraFps: {STATS}.cameraFps, frameSize: {STATS}.frameSize, "
                                          f"sent: {STATS}.sent, results: {STATS}.results}})"))

            # The teacher's override box refuses what is not a grid: a notice, and the old choice stays.
            set_grid(page, "12x12")
            poll(page, "() => document.querySelector('.emow-cv-notice').textContent.includes('12x12')", timeout=15)
            poll(page, "() => document.querySelector('.emow-cv-grid-input').value === 'auto'", timeout=15)

            # The layout: 49 tile outlines and the label, once the kernel has found the grid.
            try:
                poll(page, f"() => document.querySelectorAll('{TILES}').length === 49", timeout=120)
            except Exception as exc:
                n = page.evaluate(f"() => document.querySelectorAll('{TILES}').length")
                label = page.evaluate("() => document.querySelector('.emow-grid-label')?.textContent")
                raise AssertionError(f"{n} tile outlines, label {label!r}, not 49; results: "
                                     f"{page.evaluate(f'() => {STATS}.results')}") from exc
            label = page.text_content(".emow-grid-label")
            assert label == "grid 7\N{MULTIPLICATION SIGN}7 (auto)", label
            boxes = page.evaluate(f"""() => [...document.querySelectorAll('{TILES}')].map(e => {{
                const r = e.getBoundingClientRect(); return [r.width, r.height]; }})""")
            stage = page.evaluate("() => { const r = document.querySelector('.emow-camera .emow-stage')"
                                  ".getBoundingClientRect(); return [r.width, r.height]; }")
            for w, h in boxes:  # each outline about a seventh of the preview each way
                assert abs(w - stage[0] / 7) < stage[0] / 28 and abs(h - stage[1] / 7) < stage[1] / 28, (w, h, stage)
            # One face box per camera-on student, and the camera-off tiles marked as tiles without a face.
            poll(page, f"() => document.querySelectorAll('{TILES}.emow-tile-empty').length === {49 - call.faces}"
                 " && document.querySelectorAll('.emow-camera .emow-box:not([hidden])').length "
                 f"=== {call.faces}", timeout=120)
            # ... and the class view shows them as tiles saying "camera off", not as absent students
            poll(page, f"""() => document.querySelectorAll('.emow-classview [data-state="camera off"]').length
                === {49 - call.faces} && document.querySelector('.emow-classview').textContent
                .includes('{49 - call.faces} camera off')""", timeout=60)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".emow-camera").screenshot(path=str(SCREENSHOT))

            if importlib.util.find_spec("rapidocr"):  # the names extra: the tiles are named from the call
                shown = sorted({clean_name(call.shown[p]) for p in range(49) if call.has_face[p]})
                named = ("(shown) => [...document.querySelectorAll('.emow-cv-tile[data-id] .emow-cv-name')]"
                         ".filter(e => shown.includes(e.textContent)).length")
                try:
                    poll(page, f"(shown) => ({named})(shown) >= {round(0.8 * call.faces)}", arg=shown, timeout=120)
                finally:
                    print("tiles named from the call:", page.evaluate(named, shown), "of", call.faces)

            # The teacher sets the grid: the kernel draws that one instead; "none" removes the outlines.
            set_grid(page, "5\N{MULTIPLICATION SIGN}5")
            poll(page, f"""() => document.querySelectorAll('{TILES}').length === 25
                && document.querySelector('.emow-grid-label').textContent === 'grid set 5\N{MULTIPLICATION SIGN}5'""",
                 timeout=60)
            assert page.get_attribute(".emow-cv-grid-input", "data-grid") == "5x5"
            set_grid(page, "none")
            poll(page, f"""() => document.querySelectorAll('{TILES}').length === 0
                && document.querySelector('.emow-grid-label').textContent === 'no grid'""", timeout=60)
        finally:
            page.context.close()
            shared.context.close()
            browser.close()
            lab.kill_kernels()

"""End to end (issue 22): what the class view shows besides live faces, in JupyterLab + headless Chromium.

A recording as the source (``classroom("clip.mp4")``) shows its frames in the page, scaled down, with the same
named, colour-matched boxes as a camera's preview, and still no widget state holds a picture; a shared screen with
no face says so instead of making tiles.
"""

from __future__ import annotations

import shutil
import subprocess

from browser import (
    BROWSER_MARKS,
    CHECK_CELL,
    launch_chromium,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_cell,
    write_notebook,
)
from conftest import CLIPS
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = BROWSER_MARKS

NO_FACES = "no faces found \N{EM DASH} is the call's gallery shared?"


def test_a_recording_is_previewed_with_named_boxes_and_no_picture_in_state(lab, playwright):
    shutil.copyfile(CLIPS / "multi_face.mp4", lab.root / "lesson.mp4")
    room = 'from emowidgets import classroom\nroom = classroom("lesson.mp4", model="fast")\nroom'
    browser = launch_chromium(playwright)
    page = new_page(browser, camera=False, viewport=(1400, 1100))
    try:
        open_notebook(page, lab, write_notebook(lab.root, "recording.ipynb", room, CHECK_CELL))
        run_cell(page, 0, timeout=120)
        try:  # the 640x480 clip's frames arrive 320 px wide, with four boxes named by their tiles' ids
            poll(page, """() => { const img = document.querySelector('.emow-camera .emow-frame');
                const boxes = [...document.querySelectorAll('.emow-camera .emow-box')];
                return img && !img.hidden && img.naturalWidth === 320 && img.naturalHeight === 240
                  && boxes.length >= 4
                  && boxes.every(b => b.querySelector('.emow-who').textContent === `#${b.dataset.id}`);
                }""", timeout=90)
        except PlaywrightTimeout as exc:
            raise AssertionError(f"no preview; outputs: {outputs_text(page)}") from exc
        assert page.locator(".emow-camera video").is_hidden()
        assert page.evaluate("() => document.querySelector('.emow-camera').emowStats.previews") > 0
        poll(page, "() => document.querySelectorAll('.emow-cv-tile[data-id]').length >= 4", timeout=30)
        tile = page.locator(".emow-cv-tile[data-id]").first
        tid = tile.get_attribute("data-id")
        tile.hover()
        poll(page, "(id) => document.querySelector(`.emow-box[data-id='${id}']`)?.classList.contains('emow-box-hover')",
             arg=tid, timeout=10)

        run_cell(page, 1, timeout=30)
        page.locator(".emow-test-check").click()
        poll(page, "() => document.querySelector('.emow-test-check-result').innerText.startsWith('checked')")
        assert page.locator(".emow-test-check-result").inner_text().endswith("pictures: none")
    finally:
        page.context.close()
        browser.close()
        lab.kill_kernels()


def test_a_screen_without_faces_says_so_instead_of_making_tiles(lab, playwright, tmp_path):
    y4m = tmp_path / "slide.y4m"  # a shared slide: a plain background and a coloured box, no face
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x2f4f6f:size=640x480:rate=25",
                    "-vf", "drawbox=x=80:y=60:w=480:h=120:color=0xe0e0e0:t=fill", "-t", "3", "-pix_fmt", "yuv420p",
                    str(y4m)], check=True)
    room = 'from emowidgets import classroom\nroom = classroom("camera", model="fast")\nroom'
    browser = launch_chromium(playwright, y4m)
    page = new_page(browser, camera=True, viewport=(1400, 1000))
    try:
        open_notebook(page, lab, write_notebook(lab.root, "slide.ipynb", room))
        run_cell(page, 0, timeout=120)
        try:
            poll(page, "(text) => { const e = document.querySelector('.emow-cv-empty');"
                 " return e && !e.hidden && e.textContent === text; }", arg=NO_FACES, timeout=90)
        except PlaywrightTimeout as exc:
            raise AssertionError(f"no 'no faces' notice; outputs: {outputs_text(page)}") from exc
        assert page.evaluate("() => document.querySelector('.emow-camera').emowStats.results") > 0
        assert page.locator(".emow-cv-tile").count() == 0
    finally:
        page.context.close()
        browser.close()
        lab.kill_kernels()

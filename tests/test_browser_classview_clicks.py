"""End to end (issue 22): the class view's controls take real mouse clicks while the stream runs, and each face's
box on the preview is tied to its tile (JupyterLab + headless Chromium, the 2x2 gallery clip as the fake camera).

Every click is a real mouse press and release (``page.mouse`` at the element's box, held 100 ms as a person's
click is), never ``element.click()`` or JavaScript: a tile rebuilt between the press and the release loses the
click, which is what happened when the page redrew every tile up to 4 times a second. 20 rounds of naming a tile
(click its ``#id``), opening its calibration panel (its *calibrate* button) and changing a threshold, each waited
for; then *calibrate room*, the gallery-grid box, and hovering a tile and a box.
"""

from __future__ import annotations

import contextlib

from browser import (
    BROWSER_MARKS,
    SCREENSHOT_DIR,
    launch_chromium,
    make_y4m,
    mouse_click,
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

ROUNDS = 20
ROOM_CELL = """import ipywidgets
from emowidgets import classroom
room = classroom("camera", model="fast")
echo = ipywidgets.HTML()  # the kernel's value of the threshold, shown back: the change reached the kernel
echo.add_class("emow-test-echo")
room.view.observe(lambda c: setattr(echo, "value", f"negative_threshold={c['new']}"), "negative_threshold")
ipywidgets.VBox([room, echo])"""
SCREENSHOT = SCREENSHOT_DIR / "classview_hover.png"
RESULTS_JS = "() => document.querySelector('.emow-camera').emowStats.results"
TILE_IDS_JS = "() => [...document.querySelectorAll('.emow-cv-tile[data-id]')].map(t => t.dataset.id)"


def landed(page, js: str, arg: object = None, timeout: float = 20) -> bool:
    """Whether the condition ``js`` comes true within ``timeout`` seconds (a click landed)."""
    with contextlib.suppress(PlaywrightTimeout):
        poll(page, js, arg=arg, timeout=timeout)
        return True
    return False


def type_into(page, text: str) -> None:
    """Replace the focused input's text with ``text`` from the keyboard and press Enter."""
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_clicks_land_while_the_stream_runs_and_tiles_match_boxes(lab, playwright, tmp_path):
    y4m = make_y4m(CLIPS / "multi_face.mp4", tmp_path / "gallery.y4m", seconds=10.0, fps=25)
    browser = launch_chromium(playwright, y4m)
    page = new_page(browser, camera=True, viewport=(1400, 1400))
    try:
        open_notebook(page, lab, write_notebook(lab.root, "classview_clicks.ipynb", ROOM_CELL))
        run_cell(page, 0, timeout=120)
        try:
            poll(page, "() => document.querySelectorAll('.emow-cv-tile[data-id]').length >= 4", timeout=120)
        except PlaywrightTimeout as exc:
            raise AssertionError(f"no tiles; outputs: {outputs_text(page)}") from exc
        ids = page.evaluate(TILE_IDS_JS)[:4]
        page.evaluate("() => { window.emowFirstTile = document.querySelector('.emow-cv-tile[data-id]'); }")
        results_before = page.evaluate(RESULTS_JS)
        mouse_click(page, ".emow-cv-settings summary")
        poll(page, "() => document.querySelector('.emow-cv-settings').open")

        names = calibrations = thresholds = 0
        for i in range(ROUNDS):
            tile = f".emow-cv-tile[data-id='{ids[i % len(ids)]}']"
            name = f"S{i}"
            mouse_click(page, f"{tile} .emow-cv-name")
            if landed(page, f"() => document.activeElement === document.querySelector(\"{tile} .emow-cv-name-input\")"):
                names += 1
                type_into(page, name)
                poll(page, f"(n) => document.querySelector(\"{tile} .emow-cv-name\").textContent === n", arg=name)
                poll(page, f"() => !document.querySelector(\"{tile} .emow-cv-calibrate\").disabled")
                mouse_click(page, f"{tile} .emow-cv-calibrate")
                if landed(page, "(t) => document.querySelector('.emow-calib-title')?.textContent === t",
                          arg=f"Calibrating {name}"):
                    calibrations += 1
            value = f"{0.30 + 0.01 * i:.2f}"
            mouse_click(page, "input[data-trait='negative_threshold']")
            type_into(page, value)
            if landed(page, "(v) => document.querySelector('.emow-test-echo')?.textContent === v",
                      arg=f"negative_threshold={float(value)}"):
                thresholds += 1
        results_during = page.evaluate(RESULTS_JS) - results_before
        print(f"clicks landed: names {names}/{ROUNDS}, calibrate {calibrations}/{ROUNDS}, "
              f"thresholds {thresholds}/{ROUNDS}; {results_during} results drawn meanwhile")
        assert (names, calibrations, thresholds) == (ROUNDS, ROUNDS, ROUNDS)
        assert results_during > 4 * ROUNDS  # the stream ran (and the tiles updated) throughout
        assert page.evaluate("() => window.emowFirstTile.isConnected")  # updated in place, never rebuilt

        mouse_click(page, ".emow-cv-calibrate-room")
        poll(page, "() => document.querySelector('.emow-calib-title')?.textContent.startsWith('Calibrating the room')",
             timeout=20)
        mouse_click(page, ".emow-cv-grid-input")
        type_into(page, "none")
        poll(page, "() => document.querySelector('.emow-cv-grid-input').dataset.grid === 'none'", timeout=20)
        mouse_click(page, ".emow-cv-calib-close")
        poll(page, "() => !document.querySelector('.emow-calib-title')", timeout=20)

        # Face <-> tile: each box carries its tile's name and colour; hovering one highlights the other.
        named = {t: f"S{i}" for i, t in enumerate(ids * (ROUNDS // len(ids)))}  # the last name of each tile
        poll(page, """(named) => Object.entries(named).every(([id, name]) => {
            const box = document.querySelector(`.emow-box[data-id='${id}']`);
            const tile = document.querySelector(`.emow-cv-tile[data-id='${id}']`);
            return box && tile && box.querySelector('.emow-who').textContent === name
              && box.style.getPropertyValue('--emow-face') === tile.dataset.color; })""", arg=named, timeout=20)
        colors = page.evaluate("(ids) => ids.map(id => document.querySelector(`.emow-cv-tile[data-id='${id}']`)"
                               ".dataset.color)", ids)
        assert len(set(colors)) == len(ids), colors  # one colour per student
        hovered, other = ids[0], ids[1]
        page.evaluate("() => { document.querySelector('.emow-test-echo').style.display = 'none';"
                      " document.querySelector('.emow-camera').scrollIntoView(); }")  # for the screenshot
        tile_box = page.locator(f".emow-cv-tile[data-id='{hovered}']").bounding_box()
        page.mouse.move(tile_box["x"] + tile_box["width"] / 2, tile_box["y"] + tile_box["height"] / 2)
        poll(page, "(id) => [...document.querySelectorAll('.emow-box.emow-box-hover')].map(b => b.dataset.id)"
             ".join() === id", arg=hovered)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.locator(".jp-OutputArea-output:has(.emow-classview)").screenshot(path=str(SCREENSHOT))
        page.locator(f".emow-box[data-id='{other}']").scroll_into_view_if_needed()
        face_box = page.locator(f".emow-box[data-id='{other}']").bounding_box()
        page.mouse.move(face_box["x"] + face_box["width"] / 2, face_box["y"] + face_box["height"] / 2)
        poll(page, "(id) => [...document.querySelectorAll('.emow-cv-tile-hover')].map(t => t.dataset.id)"
             ".join() === id", arg=other)
        assert page.evaluate("() => document.querySelectorAll('.emow-box.emow-box-hover').length") == 1
    finally:
        page.context.close()
        browser.close()
        lab.kill_kernels()

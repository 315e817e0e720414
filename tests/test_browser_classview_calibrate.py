"""End to end: calibrate one student from their tile in the class view (JupyterLab + headless Chromium, the 2x2
gallery clip as the fake camera).

Real clicks: name a tile, press its *calibrate* button, burst-capture two labels of that student only, Train,
Apply; then that tile is scored in the adapter's labels and carries the *own* badge while the other tiles keep the
7 emotions. The adapters are saved from the notebook by name, and no widget state holds a picture.
"""

from __future__ import annotations

import contextlib
import json

from browser import (
    BROWSER_MARKS,
    CALIB_COUNTS_JS,
    CHECK_CELL,
    SCREENSHOT_DIR,
    calib_burst,
    launch_chromium,
    make_y4m,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_cell,
    write_notebook,
)
from conftest import CLIPS
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from emowidgets.vocab import EMOTIONS as VOCAB_EMOTIONS

pytestmark = BROWSER_MARKS

EMOTIONS = list(VOCAB_EMOTIONS)  # as the page lists them
MINE = ["neutral", "smile"]
TILES_JS = """() => [...document.querySelectorAll('.emow-cv-tile')].map(t => ({id: t.dataset.id,
    labels: t.dataset.labels, adapter: t.dataset.adapter, dominant: t.dataset.dominant,
    badge: t.querySelector('.emow-cv-badge')?.title || null}))"""
ROOM_CELL = 'from emowidgets import classroom\nroom = classroom("camera", model="fast")\nroom'
SAVE_CELL = 'index = room.save_adapters("class_adapters")\nprint(f"saved {sorted(room.adapters.people)} to {index}")'


def page_state(page) -> str:
    """What a failure message needs: tiles, notice, panel status and counts, cell outputs."""
    js = f"""() => JSON.stringify({{ tiles: ({TILES_JS})(), counts: {CALIB_COUNTS_JS},
        notice: document.querySelector('.emow-cv-notice')?.textContent,
        status: document.querySelector('.emow-calib-status')?.textContent }})"""
    with contextlib.suppress(Exception):
        return f"{page.evaluate(js)}\noutputs: {outputs_text(page)}"
    return "(unreadable)"


def test_calibrate_one_student_from_their_tile(lab, playwright, tmp_path):
    y4m = make_y4m(CLIPS / "multi_face.mp4", tmp_path / "gallery.y4m", seconds=10.0, fps=25)
    browser = launch_chromium(playwright, y4m)
    page = new_page(browser, camera=True, viewport=(1400, 1100))
    name = write_notebook(lab.root, "classroom_calibrate.ipynb", ROOM_CELL, SAVE_CELL, CHECK_CELL)
    try:
        open_notebook(page, lab, name)
        run_cell(page, 0, timeout=120)
        poll(page, "() => document.querySelectorAll('.emow-cv-tile').length >= 4", timeout=60)
        tile_id = page.locator(".emow-cv-tile").first.get_attribute("data-id")
        tile = f".emow-cv-tile[data-id='{tile_id}']"
        assert page.locator(f"{tile} .emow-cv-calibrate").is_disabled()  # adapters are kept by name
        assert "name this tile first" in str(page.locator(f"{tile} .emow-cv-calibrate").get_attribute("title"))

        page.locator(f"{tile} .emow-cv-name").click()
        page.fill(".emow-cv-name-input", "Ana")
        page.press(".emow-cv-name-input", "Enter")
        poll(page, f"() => document.querySelector(\"{tile} .emow-cv-name\")?.textContent === 'Ana'", timeout=10)
        poll(page, f"() => !document.querySelector(\"{tile} .emow-cv-calibrate\").disabled", timeout=10)
        page.locator(f"{tile} .emow-cv-calibrate").click()
        poll(page, "() => document.querySelector('.emow-calib-title')?.textContent === 'Calibrating Ana'", timeout=20)

        field = page.locator(".emow-calib-labels input")
        field.fill(", ".join(MINE))
        field.press("Enter")
        poll(page, "(n) => [...document.querySelectorAll('.emow-calib-name')].map(e => e.textContent).join() === n",
             arg=",".join(MINE))
        calib_burst(page, 0, 3)
        calib_burst(page, 1, 3)
        page.locator(".emow-calib-train").click()
        poll(page, "() => document.querySelector('.emow-calib-accuracy').innerText.includes('Result:')",
             timeout=60)
        poll(page, "() => !document.querySelector('.emow-calib-apply').disabled")
        page.locator(".emow-calib-apply").click()
        poll(page, "() => document.querySelector('.emow-calib-status').innerText === 'applied: neutral, smile'")

        poll(page, f"() => document.querySelector(\"{tile}\")?.dataset.adapter === 'own'", timeout=20)
        poll(page, f"(mine) => mine.includes(document.querySelector(\"{tile}\").dataset.dominant)", arg=MINE,
             timeout=20)  # scored by her own adapter once its result arrives
        tiles = {t["id"]: t for t in page.evaluate(TILES_JS)}
        assert tiles[tile_id]["labels"] == ",".join(MINE)
        assert tiles[tile_id]["badge"] == "own adapter: neutral, smile"
        others = [t for tid, t in tiles.items() if tid != tile_id]
        assert len(others) >= 3
        assert all(t["adapter"] == "" and t["labels"] == ",".join(EMOTIONS) and t["dominant"] in EMOTIONS
                   and t["badge"] is None for t in others), others
        (SCREENSHOT_DIR / "classview_calibrate.png").parent.mkdir(parents=True, exist_ok=True)
        page.locator(".emow-classview").screenshot(path=str(SCREENSHOT_DIR / "classview_calibrate.png"))

        run_cell(page, 1, timeout=20)
        assert "saved ['Ana'] to class_adapters/index.json" in outputs_text(page)
        index = json.loads((lab.root / "class_adapters" / "index.json").read_text())
        assert list(index["people"]) == ["Ana"] and index["room"] is None

        run_cell(page, 2, timeout=20)
        page.locator(".emow-test-check").click()
        poll(page, "() => document.querySelector('.emow-test-check-result').innerText.startsWith('checked')")
        assert page.locator(".emow-test-check-result").inner_text().endswith("pictures: none")
    except (AssertionError, PlaywrightTimeout) as exc:
        raise AssertionError(f"{exc}\n--- page state: {page_state(page)}") from exc
    finally:
        page.context.close()
        browser.close()
        lab.kill_kernels()

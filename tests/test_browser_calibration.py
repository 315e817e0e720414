"""End to end: notebooks/calibration.ipynb in JupyterLab + headless Chromium, single_face.mp4 as the camera.

Drives the CalibrationWidget with real clicks: own labels, burst captures, Train, Apply (the live gauge and face
box switch to the adapter's labels), save the adapter from the notebook, Reset (back to the 7 emotions), load the
saved adapter (its labels again), and checks that no widget state holds a picture.
"""

from __future__ import annotations

import contextlib
import json

from browser import (
    BOX,
    BROWSER_MARKS,
    CALIB_COUNTS_JS,
    CHECK_CELL,
    calib_burst,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    run_cell,
    wait_run_done,
    write_notebook,
)
from conftest import ROOT
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from emowidgets.vocab import EMOTIONS as VOCAB_EMOTIONS

pytestmark = BROWSER_MARKS

EMOTIONS = list(VOCAB_EMOTIONS)  # as the page lists them
MINE = ["neutral", "smile"]
GAUGE_LABELS_JS = "[...document.querySelectorAll('.emow-gauge-row')].map(r => r.dataset.label)"


def notebook_cells() -> list[str]:
    nb = json.loads((ROOT / "notebooks" / "calibration.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def gauge_labels(page) -> list[str]:
    return list(page.evaluate(GAUGE_LABELS_JS))


def text(page, selector: str) -> str:
    return str(page.locator(selector).text_content())


def page_state(page) -> str:
    """What a failure message needs: panel status, counts, gauge rows, face box label, cell outputs."""
    js = f"""() => JSON.stringify({{
        status: document.querySelector('.emow-calib-status')?.textContent,
        accuracy: document.querySelector('.emow-calib-accuracy')?.textContent,
        counts: {CALIB_COUNTS_JS}, gauge: {GAUGE_LABELS_JS},
        dominant: document.querySelector('.emow-gauge-dominant')?.textContent,
        box: document.querySelector('{BOX}')?.dataset.label,
        prompts: [...document.querySelectorAll('.jp-InputArea-prompt')].map(p => p.textContent) }})"""
    with contextlib.suppress(Exception):
        return f"{page.evaluate(js)}\noutputs: {outputs_text(page)}"
    return "(unreadable)"


def run_cell_expect(page, index: int, expect: str) -> str:
    """Run code cell ``index`` and check that its output holds ``expect``; returns the output."""
    run_cell(page, index, timeout=10)
    out = str(page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".jp-OutputArea").inner_text())
    assert expect in out, out
    return out


def burst(page, row: int, dominant: str, minimum: int) -> None:
    """Wait (briefly) for the clip to show ``dominant``, then burst-capture into ``row`` until ``minimum`` shots."""
    with contextlib.suppress(PlaywrightTimeout):  # the clip loops every 7 s: neutral first, a smile later
        poll(page, "(d) => document.querySelector('.emow-gauge-dominant')?.textContent === d", arg=dominant,
             timeout=8)
    calib_burst(page, row, minimum)


def test_calibrate_apply_save_reset_load(lab, browser):
    cells = notebook_cells()
    assert len(cells) == 4, "live view, calibration panel, save, load"
    name = write_notebook(lab.root, "calibration_test.ipynb", *cells, CHECK_CELL)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        wait_run_done(page, timeout=120)
        poll(page, f"() => document.querySelector('{BOX} .emow-label')", timeout=60)  # the camera runs, a face
        assert gauge_labels(page) == EMOTIONS
        assert "No adapter yet" in outputs_text(page) and "no my_class.safetensors yet" in outputs_text(page)

        # own label list: one row per label
        assert page.locator(".emow-calib-row").count() == 3  # the notebook's happy, neutral, confused
        field = page.locator(".emow-calib-labels input")
        field.fill(", ".join(MINE))
        field.press("Enter")
        poll(page, "(n) => [...document.querySelectorAll('.emow-calib-name')].map(e => e.textContent).join() === n",
             arg=",".join(MINE))
        assert page.evaluate(CALIB_COUNTS_JS) == [0, 0]

        # Apply is off until trained; Train without shots says so in the status line
        assert page.locator(".emow-calib-apply").is_disabled()
        page.locator(".emow-calib-train").click()
        poll(page, "() => document.querySelector('.emow-calib-status').innerText.includes('no shots yet')")

        burst(page, 0, "neutral", 3)
        page.locator(".emow-calib-row").nth(0).locator(".emow-calib-capture").click()
        burst(page, 1, "happy", 3)
        counts = page.evaluate(CALIB_COUNTS_JS)
        assert min(counts) >= 3, counts

        page.locator(".emow-calib-train").click()
        poll(page, "() => document.querySelector('.emow-calib-accuracy').innerText.includes('Result:')",
             timeout=60)
        accuracy = text(page, ".emow-calib-accuracy")
        assert accuracy.startswith("Result:") and "held-back" not in accuracy, accuracy
        poll(page, "() => document.querySelector('.emow-calib-curve svg.emow-calib-loss polyline')")  # loss curve
        progress = "() => document.querySelector('.emow-calib-progress .progress-bar')?.style.width"
        assert page.evaluate(progress) == "100%"
        poll(page, "() => !document.querySelector('.emow-calib-apply').disabled")

        page.locator(".emow-calib-apply").click()
        poll(page, "() => document.querySelector('.emow-calib-status').innerText.startsWith('applied')")
        assert text(page, ".emow-calib-status") == f"applied: {', '.join(MINE)}"
        poll(page, f"(mine) => {GAUGE_LABELS_JS}.join() === mine.join()", arg=MINE, timeout=20)
        poll(page, f"(mine) => mine.includes(document.querySelector('{BOX}')?.dataset.label)", arg=MINE, timeout=20)
        assert text(page, ".emow-gauge-dominant") in MINE

        saved = run_cell_expect(page, 2, "saved")
        assert f"saved {tuple(MINE)!r} to my_class.safetensors" in saved
        assert (lab.root / "my_class.safetensors").stat().st_size < 100_000

        page.locator(".emow-calib-reset").click()
        poll(page, "() => document.querySelector('.emow-calib-status').innerText === 'reset to the base model'")
        poll(page, f"(base) => {GAUGE_LABELS_JS}.join() === base.join()", arg=EMOTIONS, timeout=20)
        poll(page, f"(base) => base.includes(document.querySelector('{BOX}')?.dataset.label)", arg=EMOTIONS,
             timeout=20)
        assert page.evaluate(CALIB_COUNTS_JS) == [0, 0]
        assert page.locator(".emow-calib-apply").is_disabled()
        assert text(page, ".emow-calib-accuracy") == ""

        loaded = run_cell_expect(page, 3, "using")
        assert f"using {tuple(MINE)!r} from my_class.safetensors" in loaded
        poll(page, f"(mine) => {GAUGE_LABELS_JS}.join() === mine.join()", arg=MINE, timeout=20)

        page.locator(".emow-test-check").click()
        poll(page, "() => document.querySelector('.emow-test-check-result').innerText.startsWith('checked')")
        assert text(page, ".emow-test-check-result").endswith("pictures: none")
    except (AssertionError, PlaywrightTimeout) as exc:
        raise AssertionError(f"{exc}\n--- page state: {page_state(page)}") from exc
    finally:
        page.context.close()
        lab.kill_kernels()

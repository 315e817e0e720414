"""A new user's first hour in JupyterLab (headless Chromium; single_face.mp4 as the fake camera, the 2x2 clip as
a call shared as a tab): the README's walk from the quickstart on an empty compilation cache through calibration
and the class view to the after-class report, with real clicks and no traceback in any output; with four faces
(the 2x2 clip as the camera) the gauge says whose bars it shows, and a clicked box picks the face."""

from __future__ import annotations

import json
import shutil
import time

from browser import (
    BOX,
    BROWSER_MARKS,
    JupyterLab,
    calib_burst,
    copy_notebook,
    launch_chromium,
    launch_chromium_sharing,
    make_y4m,
    mouse_click,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    run_cell,
    share_video_as_screen,
    wait_run_done,
)
from conftest import CLIPS, ROOT

from emowidgets.startup import COMPILING, LOADING, WAITING

pytestmark = BROWSER_MARKS

# Every text the start-up line under the cell and the gauge's status line showed, however briefly.
SEEN_JS = """() => {
  window.emowSeen = new Set();
  const note = () => document.querySelectorAll('.emow-startup, .emow-gauge-status:not([hidden])')
    .forEach((e) => window.emowSeen.add(e.textContent));
  new MutationObserver(note).observe(document, { subtree: true, childList: true, characterData: true });
}"""


def type_cell(page, code: str) -> None:
    """Add a cell below the last one and run ``code`` in it from the keyboard, as a user types it."""
    page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def no_traceback(page, where: str) -> None:
    text = outputs_text(page)
    assert "Traceback" not in text and "Error:" not in text, f"{where}: {text}"


def test_first_hour_quickstart_calibration_class_view_report(tmp_path, monkeypatch, playwright):
    """The README's path on an empty compilation cache, in the notebooks as shipped (opened from ``notebooks/``
    as ``make demo`` shows them): the quickstart says what it does from the first moment of ``live()`` until the
    box comes and stops cleanly; the calibration notebook trains, applies and saves an adapter with real clicks;
    the class notebook watches a call gallery shared as a tab (``classroom("screen")``), logs numbers, and its
    after-class cell writes the report, whose link opens it. No output anywhere holds a traceback."""
    monkeypatch.setenv("EMOWIDGETS_CACHE_DIR", str(tmp_path / "empty-cache"))  # the kernels compile everything
    camera = make_y4m(CLIPS / "single_face.mp4", tmp_path / "face.y4m")
    with JupyterLab(tmp_path / "lab") as lab:
        (lab.root / "notebooks").mkdir()
        for nb in ("quickstart", "calibration", "classroom"):
            copy_notebook(ROOT / "notebooks" / f"{nb}.ipynb", lab.root / "notebooks")
        shutil.copyfile(CLIPS / "multi_face.mp4", lab.root / "gallery.mp4")  # the call, in the tab shared
        browser = launch_chromium_sharing(playwright, camera)
        shared = share_video_as_screen(browser, lab.url("files/gallery.mp4"), size=(1280, 960))
        page = new_page(browser, camera=True, viewport=(1400, 1000))
        try:
            # 1. quickstart: a visible state during the cold start, the box, then "stopped"
            open_notebook(page, lab, "notebooks/quickstart.ipynb")
            page.evaluate(SEEN_JS)
            t0 = time.monotonic()
            run_all(page)
            try:
                poll(page, f"() => document.querySelector('{BOX}')", timeout=180)
            except Exception as exc:
                raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
            print(f"quickstart, cache empty: Run All -> first box {time.monotonic() - t0:.1f} s")  # (pytest -s)
            seen = page.evaluate("() => [...window.emowSeen]")
            assert LOADING in seen and COMPILING in seen, seen  # before the view could appear
            assert WAITING in seen, seen  # the gauge, until its first result
            poll(page, "() => !document.querySelector('.emow-startup')")  # the line is emptied once the view is up
            poll(page, "() => document.querySelector('.emow-gauge-status').hidden", timeout=120)  # warm-up done
            no_traceback(page, "quickstart")
            type_cell(page, "view.close()")
            poll(page, "() => document.querySelector('.emow-gauge-dominant')?.textContent === 'stopped'", timeout=30)
            assert page.locator(".emow-camera").count() == 0  # the camera is released, its preview gone
            assert page.text_content(".emow-gauge-status") == "stopped"
            no_traceback(page, "quickstart closed")

            # 2. calibration: the notebook's own labels, a burst each, Train, Apply, save
            page.keyboard.press("Control+s")  # saved, as a user leaves a notebook: no "leave page?" prompt
            page.context.close()  # the next notebook in a tab of its own
            page = new_page(browser, camera=True, viewport=(1400, 1000))
            open_notebook(page, lab, "notebooks/calibration.ipynb")
            t0 = time.monotonic()
            run_all(page)
            poll(page, f"() => document.querySelector('{BOX}')", timeout=120)
            print(f"calibration, cache filled by the quickstart: Run All -> first box {time.monotonic() - t0:.1f} s")
            wait_run_done(page, timeout=180)
            poll(page, f"() => document.querySelector('{BOX} .emow-label')", timeout=120)
            labels = page.evaluate("() => [...document.querySelectorAll('.emow-calib-name')].map(e => e.textContent)")
            assert labels == ["happy", "neutral", "confused"], labels
            for row in range(len(labels)):
                calib_burst(page, row, 3)
            mouse_click(page, ".emow-calib-train")
            poll(page, "() => document.querySelector('.emow-calib-accuracy').innerText.includes('Result:')",
                 timeout=60)
            poll(page, "() => !document.querySelector('.emow-calib-apply').disabled")
            mouse_click(page, ".emow-calib-apply")
            poll(page, "() => document.querySelector('.emow-calib-status').innerText.startsWith('applied')")
            run_cell(page, 2, timeout=30)  # Step 3: save the adapter
            assert (lab.root / "notebooks" / "my_class.safetensors").is_file(), outputs_text(page)
            no_traceback(page, "calibration")
            type_cell(page, "calib.close(); view.close()")
            poll(page, "() => document.querySelector('.emow-gauge-dominant')?.textContent === 'stopped'", timeout=30)

            # 3. class view on the shared call: tiles, a name, log numbers; after class, the report
            page.keyboard.press("Control+s")  # saved, as a user leaves a notebook: no "leave page?" prompt
            page.context.close()  # the next notebook in a tab of its own
            page = new_page(browser, camera=True, viewport=(1400, 1000))
            open_notebook(page, lab, "notebooks/classroom.ipynb")
            cells = json.loads((ROOT / "notebooks" / "classroom.ipynb").read_text())["cells"]
            after_class = sum(c["cell_type"] == "code" for c in cells) - 1  # the last cell: after class
            for index in range(after_class):
                run_cell(page, index, timeout=180)
            try:
                poll(page, "() => document.querySelectorAll('.emow-cv-tile[data-id]').length >= 4", timeout=180)
            except Exception as exc:
                status = page.evaluate("() => document.querySelector('.emow-status')?.textContent")
                page.screenshot(path="/tmp/walk_fail.png")
                raise AssertionError(f"no tiles; camera status {status!r}; outputs: {outputs_text(page)}") from exc
            mouse_click(page, ".emow-cv-logging")
            poll(page, "() => document.querySelector('.emow-cv-logging').checked")
            mouse_click(page, ".emow-cv-tile[data-id] .emow-cv-name")
            page.keyboard.type("Ana")
            page.keyboard.press("Enter")
            poll(page, "() => [...document.querySelectorAll('.emow-cv-name')].some(e => e.textContent === 'Ana')",
                 timeout=20)
            points = "parseInt(document.querySelector('.emow-cv-chart')?.dataset.points || '0')"
            poll(page, f"() => {points} >= 3", timeout=60)  # a few seconds of the lesson logged
            no_traceback(page, "class view")
            run_cell(page, after_class, timeout=120)
            try:
                page.locator(".jp-OutputArea-output a", has_text=".html").wait_for(timeout=30000)
            except Exception as exc:
                raise AssertionError(f"no report link; outputs: {outputs_text(page)}") from exc
            no_traceback(page, "after class")
            assert "report written: " in outputs_text(page)
            mouse_click(page, ".jp-OutputArea-output a:has-text('.html')")  # JupyterLab opens it in a tab of its own
            report = page.frame_locator(".jp-HTMLViewer iframe")
            report.locator("h1").wait_for(timeout=30000)
            assert report.locator("h1").text_content() == "Class report"
            assert "Ana" in str(report.locator("body").text_content())
        finally:
            page.context.close()
            shared.context.close()
            browser.close()
            lab.kill_kernels()


def test_with_several_faces_the_gauge_says_whose_bars_and_a_click_picks_one(lab, playwright, tmp_path):
    y4m = make_y4m(CLIPS / "multi_face.mp4", tmp_path / "four.y4m", seconds=10.0, fps=25)
    browser = launch_chromium(playwright, y4m)
    page = new_page(browser, camera=True, viewport=(1400, 900))
    try:
        name = copy_notebook(ROOT / "notebooks" / "quickstart.ipynb", lab.root, "four.ipynb")
        open_notebook(page, lab, name)
        run_all(page)
        shown = "document.querySelector('.emow-gauge-shown')?.textContent || ''"
        try:
            poll(page, f"() => document.querySelectorAll('{BOX}').length >= 4 && ({shown}).includes('largest of')",
                 timeout=120)
        except Exception as exc:
            raise AssertionError(f"no four faces; outputs: {outputs_text(page)}") from exc
        # auto-calibration (the default) says while it learns the face's resting expression, then the line is whose
        poll(page, f"() => ({shown}).endsWith('(click a box to follow one)')", timeout=60)
        picked = page.locator(BOX).last.get_attribute("data-id")
        page.click(f".emow-box[data-id='{picked}']")
        poll(page, f"() => ({shown}).startsWith('bars: the face you clicked')", timeout=20)
        page.click(f".emow-box[data-id='{picked}']")  # again: back to the largest face
        poll(page, f"() => ({shown}).includes('largest of')", timeout=20)
        assert "Traceback" not in outputs_text(page)
    finally:
        page.context.close()
        browser.close()
        lab.kill_kernels()

"""A new user's first minutes in JupyterLab (headless Chromium, single_face.mp4 as the fake camera): the quickstart
run on an empty compilation cache says what it is doing from the first moment of ``live()`` until the box comes,
no output holds a traceback, and ``view.close()`` leaves a "stopped" gauge instead of nothing; with four faces (the
2x2 clip as the camera) the gauge says whose bars it shows, and a clicked box picks the face."""

from __future__ import annotations

from browser import (
    BOX,
    BROWSER_MARKS,
    JupyterLab,
    copy_notebook,
    launch_chromium,
    make_y4m,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
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


def test_quickstart_cold_start_says_what_it_does_then_stops_cleanly(tmp_path, monkeypatch, browser):
    monkeypatch.setenv("EMOWIDGETS_CACHE_DIR", str(tmp_path / "empty-cache"))  # the kernel compiles everything
    with JupyterLab(tmp_path / "lab") as lab:
        name = copy_notebook(ROOT / "notebooks" / "quickstart.ipynb", lab.root)
        page = new_page(browser, camera=True)
        try:
            open_notebook(page, lab, name)
            page.evaluate(SEEN_JS)
            run_all(page)
            try:
                poll(page, f"() => document.querySelector('{BOX}')", timeout=180)
            except Exception as exc:
                raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
            seen = page.evaluate("() => [...window.emowSeen]")
            assert LOADING in seen and COMPILING in seen, seen  # before the view could appear
            assert WAITING in seen, seen  # the gauge, until its first result
            poll(page, "() => !document.querySelector('.emow-startup')")  # the line is emptied once the view is up
            poll(page, "() => document.querySelector('.emow-gauge-status').hidden", timeout=120)  # warm-up done
            text = outputs_text(page)
            assert "Traceback" not in text, text

            page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-InputPrompt").click()
            page.keyboard.press("Escape")
            page.keyboard.press("b")  # a new cell below, as a user types it
            page.keyboard.press("Enter")
            page.keyboard.type("view.close()")
            page.keyboard.press("Shift+Enter")
            poll(page, "() => document.querySelector('.emow-gauge-dominant')?.textContent === 'stopped'", timeout=30)
            assert page.locator(".emow-camera").count() == 0  # the camera is released, its preview gone
            assert page.text_content(".emow-gauge-status") == "stopped"
            assert "Traceback" not in outputs_text(page)
        finally:
            page.context.close()
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

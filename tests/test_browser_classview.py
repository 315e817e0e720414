"""End to end: classroom("camera") in JupyterLab + headless Chromium, the 2x2 gallery clip as the fake camera:
tiles, chart, a name, the stream's end, absent faces retiring into the "left" summary (with clock times), and the
notebook's after-class cell linking the report."""

from __future__ import annotations

import json
import re
import sys

from browser import (
    BROWSER_MARKS,
    SCREENSHOT_DIR,
    JupyterLab,
    launch_chromium,
    make_y4m,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    run_cell,
    write_notebook,
)
from conftest import CLIPS, ROOT
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(ROOT / "benchmarks"))
from gallery_util import write_gallery_video

pytestmark = BROWSER_MARKS

SCREENSHOT = SCREENSHOT_DIR / "classview.png"
POINTS_JS = "() => parseInt(document.querySelector('.emow-cv-chart')?.dataset.points || '0')"
END_STREAM_JS = """() => { const t = document.querySelector('.emow-camera video').srcObject.getVideoTracks()[0];
                           t.stop(); t.dispatchEvent(new Event('ended')); }"""


def test_class_view_tiles_chart_names_stream_end_and_retirement(tmp_path):
    y4m = make_y4m(CLIPS / "multi_face.mp4", tmp_path / "gallery.y4m", seconds=10.0, fps=25)
    # The shipped notebook, with the fake camera instead of a window share (headless Chromium cannot pick a
    # window); its cells are run one by one, the after-class cell (which closes the view) last.
    notebook = json.loads((ROOT / "notebooks" / "classroom.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    after_class = next(i for i, c in enumerate(code) if "room.close()" in "".join(c["source"]))
    assert after_class == len(code) - 1
    for cell in code:
        cell["source"] = "".join(cell["source"]).replace('classroom("screen")', 'classroom("camera", model="fast")')
    assert any('classroom("camera"' in c["source"] for c in code)
    with JupyterLab(tmp_path / "lab") as lab, sync_playwright() as p:
        browser = launch_chromium(p, y4m)
        page = new_page(browser, camera=True, viewport=(1400, 1000))
        try:
            (lab.root / "classroom.ipynb").write_text(json.dumps(notebook))
            open_notebook(page, lab, "classroom.ipynb")
            for index in range(after_class):
                run_cell(page, index, timeout=120)
            try:
                poll(page, "() => document.querySelectorAll('.emow-cv-tile').length >= 4", timeout=120)
            except Exception as exc:
                raise AssertionError(f"no tiles; outputs: {outputs_text(page)}") from exc
            page.click(".emow-cv-logging")  # log numbers, for the report after class
            assert page.text_content(".emow-cv-status") == "running"
            assert page.text_content(".emow-cv-presence").startswith("4 present")
            first = poll(page, f"() => ({POINTS_JS})() >= 2 && ({POINTS_JS})()", timeout=30)
            poll(page, f"(n) => ({POINTS_JS})() > n", arg=first, timeout=15)  # the chart keeps growing

            tile = page.locator(".emow-cv-tile").first
            tile_id = tile.get_attribute("data-id")
            tile.locator(".emow-cv-name").click()
            page.fill(".emow-cv-name-input", "Ana")
            page.press(".emow-cv-name-input", "Enter")
            named = f".emow-cv-tile[data-id='{tile_id}'] .emow-cv-name"
            poll(page, f"() => document.querySelector(\"{named}\")?.textContent === 'Ana'", timeout=10)
            page.wait_for_timeout(3000)  # a dozen redraws later the name is still there
            assert page.text_content(named) == "Ana"
            assert page.locator(".emow-cv-tile").count() >= 4
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".emow-classview").screenshot(path=str(SCREENSHOT))

            page.evaluate(END_STREAM_JS)
            page.wait_for_selector(".emow-cv-status[data-status='stream ended']", timeout=20000)
            assert page.text_content(".emow-status").startswith("stream ended")

            # The teacher shortens the retention time: the now-absent faces retire from the tiles into "left",
            # the named one under its name.
            assert page.text_content(".emow-cv-left-count") == "0"
            page.click(".emow-cv-settings summary")
            page.fill("input[data-trait='retention_seconds']", "2")
            page.press("input[data-trait='retention_seconds']", "Enter")
            poll(page, "() => document.querySelectorAll('.emow-cv-tile').length === 0", timeout=20)
            assert int(page.text_content(".emow-cv-left-count")) >= 4
            page.click(".emow-cv-left summary")
            assert page.locator(".emow-cv-left-list li", has_text="Ana").count() == 1
            assert page.text_content(".emow-cv-presence").startswith("0 present")
            left = page.text_content(".emow-cv-left-list li")
            assert re.search(r"left at \d\d:\d\d$", left), left  # a clock time, not minutes since the start

            run_cell(page, after_class, timeout=120)  # after class: the report, as a link to open it
            link = page.locator(".jp-OutputArea-output a", has_text=".html")
            link.wait_for(timeout=30000)
            report = link.text_content()
            assert re.fullmatch(r"class_log_\d{8}_\d{6}\.html", report) and (lab.root / report).is_file(), report
            assert f"/files/{report}" in link.get_attribute("href")  # JupyterLab serves the file at the link
            assert f"report written: {report}" in outputs_text(page) and "Traceback" not in outputs_text(page)
        finally:
            page.context.close()
            browser.close()
            lab.kill_kernels()


def test_gallery_of_small_faces_is_sent_at_full_size(tmp_path):
    """25 faces in a 1280x720 video-call gallery are each too small to lose pixels: every frame goes at full size,
    and the class view says at what size and level it runs."""
    mp4 = write_gallery_video(25, (1280, 720), tmp_path / "gallery.mp4", seconds=3.0, fps=15)
    y4m = make_y4m(mp4, tmp_path / "gallery.y4m", seconds=3.0, size=(1280, 720), fps=15)
    code = ("import emowidgets\nroom = emowidgets.classroom('camera', model='fast', detector='gallery', width=1280, "
            "height=720)\nroom")
    with JupyterLab(tmp_path / "lab") as lab, sync_playwright() as p:
        browser = launch_chromium(p, y4m)
        page = new_page(browser, camera=True, viewport=(1400, 1000))
        stats = "document.querySelector('.emow-camera').emowStats"
        try:
            open_notebook(page, lab, write_notebook(lab.root, "gallery.ipynb", code))
            run_all(page)
            try:
                poll(page, "() => document.querySelectorAll('.emow-cv-tile').length >= 10", timeout=180)
            except Exception as exc:
                raise AssertionError(f"no tiles; outputs: {outputs_text(page)}") from exc
            first = page.evaluate(f"() => {stats}.results")
            poll(page, f"(n) => {stats}.results >= n + 15", arg=first, timeout=60)
            page.wait_for_timeout(1500)  # longer than the hold before frames shrink
            s = page.evaluate(f"() => {stats}")
            assert s["frameSize"] == [1280, 720]
            assert set(s["sizes"]) == {"1280x720"}, s["sizes"]  # never smaller, not even for a frame
            level = page.text_content(".emow-cv-level")
            assert level.endswith(" · 1280\N{MULTIPLICATION SIGN}720"), level  # the rate is shown once, beside it
        finally:
            page.context.close()
            browser.close()
            lab.kill_kernels()

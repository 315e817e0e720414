"""The quality ladder end to end: the kernel is slowed, the gauge shows the level stepping down, then back up."""

from __future__ import annotations

import pytest
from browser import BROWSER_MARKS, new_page, open_notebook, outputs_text, poll, run_cell, write_notebook
from conftest import CLIPS

pytestmark = BROWSER_MARKS

# A 12 fps camera leaves the unslowed kernel ample headroom even on a loaded 2-core machine, so the
# climb back up is the ladder's doing, not luck; 0.25 s of extra work per frame caps it at 4 fps. The test drives
# each phase from what the page shows (top level seen -> slow down, bottom seen -> speed up), never by waiting
# a fixed time.
CODE = """import time
import emowidgets
view = emowidgets.live()
slow = lambda result: time.sleep(0.25)  # stands for a kernel that cannot keep up
view"""
SLOW_DOWN = "view.pipeline.add_listener(slow)"
RECOVER = "view.pipeline.remove_listener(slow)"

TOP, BOTTOM = "main · TTA on · detect 5/s", "main · TTA off · detect 2/s"
# Every level the gauge shows from now on (model · TTA · detection rate: size and fps change all the time), as
# the page changes it: a MutationObserver sees each text, where a poll from the test could miss a short one.
RECORD_LEVELS_JS = """() => {
  const el = document.querySelector('.emow-gauge-level');
  const short = () => el.textContent.split(' · ').slice(0, 3).join(' · ');
  window.emowLevels = [short()];
  new MutationObserver(() => {
    if (window.emowLevels.at(-1) !== short()) window.emowLevels.push(short());
  }).observe(el, { childList: true, characterData: true, subtree: true });
}"""
LEVELS_JS = "() => window.emowLevels"


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    from browser import launch_chromium, make_y4m

    y4m = make_y4m(CLIPS / "single_face.mp4", tmp_path_factory.mktemp("cam") / "single_face12.y4m", fps=12)
    b = launch_chromium(playwright, y4m)
    yield b
    b.close()


def test_ladder_steps_down_when_the_kernel_is_slow_and_back_up_after(lab, browser):
    name = write_notebook(lab.root, "ladder.ipynb", CODE, SLOW_DOWN, RECOVER)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_cell(page, 0)
        try:
            poll(page, "(top) => (document.querySelector('.emow-gauge-level')?.textContent || '').startsWith(top)",
                 arg=TOP, timeout=120)
        except Exception as exc:
            raise AssertionError(f"the top level never showed; outputs: {outputs_text(page)}") from exc
        page.evaluate(RECORD_LEVELS_JS)
        run_cell(page, 1)  # slowed until the ladder is at the bottom, however long a loaded machine takes
        try:
            poll(page, "(bottom) => window.emowLevels.includes(bottom)", arg=BOTTOM, timeout=120)
        except Exception as exc:
            raise AssertionError(f"not at the bottom while slowed: {page.evaluate(LEVELS_JS)}") from exc
        run_cell(page, 2)
        try:
            poll(page, "(top) => window.emowLevels.at(-1) === top", arg=TOP, timeout=150)
        except Exception as exc:
            raise AssertionError(f"never back at the top: {page.evaluate(LEVELS_JS)}") from exc
        seen = page.evaluate(LEVELS_JS)
        assert seen[0] == TOP, seen
        bottom = seen.index(BOTTOM)
        assert all(s != TOP for s in seen[1 : bottom + 1]), seen  # stepped down without climbing back first
    finally:
        page.context.close()
        lab.kill_kernels()

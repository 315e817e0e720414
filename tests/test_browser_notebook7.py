"""Jupyter Notebook 7 in headless Chromium: the quickstart boxes the face and moves the gauge (single_face.mp4 as
the camera), and a page on an insecure origin (a host name other than localhost) says in one line why there is
no camera and what to do. One Notebook 7 server and one Chromium for the module."""

from __future__ import annotations

import pytest
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
    write_notebook,
)
from conftest import CLIPS, ROOT

pytestmark = BROWSER_MARKS

STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
INSECURE_HOST = "emowidgets-classroom.test"  # Chromium resolves it to 127.0.0.1; not localhost, so not secure


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    # allow_remote_access: the server answers a Host header other than localhost (the insecure-origin test)
    with JupyterLab(tmp_path_factory.mktemp("nb7"), app="notebook",
                    args=("--ServerApp.allow_remote_access=True",)) as server:
        yield server


@pytest.fixture(scope="module")
def chromium(playwright, tmp_path_factory):
    y4m = make_y4m(CLIPS / "single_face.mp4", tmp_path_factory.mktemp("cam") / "single_face.y4m")
    b = launch_chromium(playwright, y4m, args=(f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",))
    yield b
    b.close()


def test_notebook7_quickstart_boxes_the_face_and_updates_the_gauge(notebook7, chromium):
    name = copy_notebook(ROOT / "notebooks" / "quickstart.ipynb", notebook7.root)
    page = new_page(chromium, camera=True)
    try:
        open_notebook(page, notebook7, name)
        assert page.locator("#main-panel .jp-NotebookPanel").count() == 1  # Notebook 7's shell, not JupyterLab's
        run_all(page)
        try:
            label = poll(page, f"() => document.querySelector('{BOX} .emow-label')?.textContent", timeout=120)
        except Exception as exc:
            raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
        assert label.split()[0] in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        assert page.text_content(".emow-status") == "running"
        values = "[...document.querySelectorAll('.emow-gauge-value')].map(e => e.textContent).join(' ')"
        first = page.evaluate(f"() => {values}")
        poll(page, f"""(first) => parseFloat(document.querySelector('.emow-gauge-fps').dataset.value) > 0
                       && {values} !== first""", arg=first, timeout=20)
        assert page.text_content(".emow-gauge-dominant") not in ("", "no face")
        stderr = page.eval_on_selector_all(STDERR, "els => els.map(e => e.innerText)")
        assert stderr == [], f"red stderr lines under the cell: {stderr}"  # MediaPipe's start-up lines, once
    finally:
        page.context.close()
        notebook7.kill_kernels()


def test_insecure_origin_says_why_there_is_no_camera_and_what_to_do(notebook7, chromium):
    name = write_notebook(notebook7.root, "insecure.ipynb", "import emowidgets\nview = emowidgets.live()\nview")
    page = new_page(chromium, camera=True)
    try:
        page.goto(notebook7.url(f"notebooks/{name}").replace("127.0.0.1", INSECURE_HOST))
        assert page.evaluate("() => [window.isSecureContext, 'mediaDevices' in navigator]") == [False, False]
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60000)
        run_all(page)
        try:
            page.wait_for_selector(".emow-status[data-status='camera unavailable']", timeout=60000)
        except Exception as exc:
            raise AssertionError(f"no 'camera unavailable' status; outputs: {outputs_text(page)}") from exc
        text = page.text_content(".emow-status")
        assert text == (f"camera unavailable: http://{INSECURE_HOST}:{notebook7.port} is not a secure origin, so the "
                        "browser offers no camera: open Jupyter at https:// or http://localhost, or, if the kernel "
                        'runs on this computer, read its camera there: emowidgets.live("kernel")')
        assert page.query_selector(BOX) is None
    finally:
        page.context.close()
        notebook7.kill_kernels()

"""Helpers for browser tests: JupyterLab server, fake-camera Chromium, notebook driving (Playwright sync API).

Recipes and pitfalls are measured in ``shared/docs/browser-testing.md``. Typical use::

    with JupyterLab(root) as lab, sync_playwright() as p:
        browser = launch_chromium(p, y4m=make_y4m(CLIPS / "single_face.mp4", tmp / "cam.y4m"))
        page = new_page(browser, camera=True)
        open_notebook(page, lab, "quickstart.ipynb")
        run_all(page)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("EMOWIDGETS_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
BROWSER_MARKS = [pytest.mark.browser,
                 pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium at /usr/bin/chromium")]
"""``pytestmark`` of every real-browser test module."""

# Screenshots go to a temp folder; `EMOWIDGETS_SCREENSHOTS=docs/images make test` refreshes the README's pictures.
BOX = ".emow-box:not([hidden])"
"""A face box drawn over the camera preview."""
SCREENSHOT_DIR = Path(os.environ.get("EMOWIDGETS_SCREENSHOTS") or Path(tempfile.gettempdir()) / "emowidgets-shots")
SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """End a server process: politely, then by force after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(root: Path) -> dict[str, str]:
    """Environment of a server and its kernels: this interpreter first on PATH, Jupyter's config under ``root``,
    and without pytest's ``PYTEST_CURRENT_TEST``, which makes ipykernel skip showing native (fd 2) output in the
    page: the kernels behave as they do for a teacher."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(root / ".run")}


def make_y4m(src: Path, dst: Path, *, seconds: float = 7.0, size: tuple[int, int] = (640, 480),
             fps: int = 30) -> Path:
    """Convert a clip into the raw .y4m Chromium's fake camera plays (looped); ~14 MB/s at 640x480x30."""
    if not dst.exists():
        vf = f"scale={size[0]}:{size[1]},fps={fps}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-vf", vf,
                        "-pix_fmt", "yuv420p", str(dst)], check=True)
    return dst


class JupyterLab:
    """A JupyterLab (or, with ``app="notebook"``, a Notebook 7) server on a free port with a token, serving
    ``root``; a context manager. ``args`` are added to the command line."""

    def __init__(self, root: Path, *, token: str = "emowtest", port: int | None = None,
                 log: Path | None = None, app: str = "jupyterlab", args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.token = token
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log or root / f"{app}.log"
        self.app = app
        self.args = args
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str, **query: str) -> str:
        """Absolute URL of ``path`` with the token (and ``query``) appended."""
        params = "&".join([*(f"{k}={v}" if v else k for k, v in query.items()), f"token={self.token}"])
        return f"{self.base}/{path.lstrip('/')}?{params}"

    def start(self, timeout: float = 60.0) -> JupyterLab:
        """Start the server (with this interpreter, so kernels use the same environment) and wait for it."""
        env = server_env(self.root)
        cmd = [sys.executable, "-m", self.app, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--allow-root", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               *self.args]
        if self.app == "jupyterlab":
            cmd += [f"--LabApp.workspaces_dir={self.root / '.workspaces'}",
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        labconfig = self.root / ".jupyter" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)  # no "get Jupyter news?" toast over the widgets
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited ({self._proc.returncode}); see {self.log}")
            with contextlib.suppress(OSError):
                self.api("GET", "api/status")
                return self
            time.sleep(0.3)
        raise TimeoutError(f"{self.app} did not answer in {timeout} s; see {self.log}")

    def api(self, method: str, path: str) -> Any:
        """Call the REST API; returns the decoded JSON (or ``None`` for an empty body)."""
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict[str, Any]]:
        """Running kernels as the server lists them."""
        return list(self.api("GET", "api/kernels"))

    def kernel_pids(self) -> list[int]:
        """Process ids of this server's kernels (found by their connection file names)."""
        ids = [k["id"] for k in self.kernels()]
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
                    if any(f"kernel-{kid}.json" in cmdline for kid in ids):
                        pids.append(int(proc.name))
        return pids

    def kill_kernels(self) -> None:
        """Shut down every kernel of this server (they pile up between tests otherwise)."""
        for kernel in self.kernels():
            with contextlib.suppress(urllib.error.URLError):
                self.api("DELETE", f"api/kernels/{kernel['id']}")

    def stop(self) -> None:
        """Kill the kernels and the server."""
        if self._proc is None:
            return
        with contextlib.suppress(OSError, urllib.error.URLError):
            self.kill_kernels()
        terminate(self._proc)
        self._proc = None

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Voila:
    """Voilà serving one notebook as an app (the code hidden) on a free port; a context manager. Every page load
    starts a kernel that runs the notebook; closing the page ends it."""

    def __init__(self, notebook: Path, *, port: int | None = None) -> None:
        self.notebook = notebook
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = notebook.parent / "voila.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Voila:
        root = self.notebook.parent
        env = server_env(root)
        cmd = [sys.executable, "-m", "voila", str(self.notebook), "--no-browser", f"--port={self.port}",
               "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        end = time.monotonic() + 60
        while time.monotonic() < end:  # a port that accepts; a GET would start a kernel
            if self._proc.poll() is not None:
                raise RuntimeError(f"voila exited ({self._proc.returncode}); see {self.log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.3)
        raise TimeoutError(f"voila did not listen in 60 s; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            terminate(self._proc)
            self._proc = None


def chromium_args(y4m: Path | None = None) -> list[str]:
    """Fake camera flags. No ``--use-fake-ui-for-media-stream``: contexts grant or deny the camera."""
    args = ["--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    return args


def launch_chromium(playwright: Any, y4m: Path | None = None, *, headless: bool = True,
                    args: tuple[str, ...] = ()) -> Any:
    """Debian's Chromium with a fake camera (the y4m looped, or Chromium's test pattern), plus ``args``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=headless,
                                      args=[*chromium_args(y4m), *args])


SHARE_TITLE = "emowidgets-shared-screen"
"""Title of the tab that ``launch_chromium_sharing`` makes every ``getDisplayMedia`` call capture."""


def launch_chromium_sharing(playwright: Any, y4m: Path | None = None, *, title: str = SHARE_TITLE,
                            args: tuple[str, ...] = ()) -> Any:
    """Chromium (as ``launch_chromium``: fake camera too) whose ``getDisplayMedia`` shares, with no picker and no
    permission prompt, the tab titled ``title``: open that tab with :func:`share_video_as_screen`. The page's own
    call runs (camera.js, source ``"screen"``) and gets a real tab-capture track (``displaySurface: "browser"``).

    Measured (``docs/testing-screen-share.md``): a 1920x1080 15 fps gallery tab arrives at 1920x1080, ~14-15 fps.
    Do NOT add ``--use-fake-ui-for-media-stream``: with it this capture fails (``NotReadableError``). Without the
    title flag, ``--use-fake-device-for-media-stream`` makes ``getDisplayMedia`` return Chromium's green test
    pattern (``--use-file-for-fake-video-capture`` is not used for it)."""
    return launch_chromium(playwright, y4m, args=(f"--auto-select-tab-capture-source-by-title={title}", *args))


def share_video_as_screen(browser: Any, url: str, *, size: tuple[int, int] = (1920, 1080),
                          title: str = SHARE_TITLE, timeout: float = 30.0) -> Any:
    """Open, in a context of its own whose viewport is ``size`` (the shared stream's size), a tab titled
    ``title`` that plays the video at ``url`` looped and muted, filling the tab (e.g. a gallery mp4 in the
    Jupyter root: ``lab.url("files/gallery.mp4")``). Returns that page once the video plays; close its context
    to end the share. Open it before the page that calls ``getDisplayMedia``: the title is matched then."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_content(f"<!doctype html><title>{title}</title><style>html,body{{margin:0;background:#000}}"
                     "video{width:100vw;height:100vh;display:block;object-fit:fill}</style>"
                     f"<video src={json.dumps(url)} muted autoplay loop playsinline></video>")
    try:
        poll(page, "() => document.querySelector('video').currentTime > 0.1", timeout=timeout)
    except Exception as exc:
        error = page.evaluate("() => document.querySelector('video').error?.message || ''")
        context.close()
        raise RuntimeError(f"the shared video {url} does not play: {error or 'no error reported'}") from exc
    return page


def new_page(browser: Any, *, camera: bool, viewport: tuple[int, int] = (1280, 900)) -> Any:
    """A page in a fresh context where camera access is granted (``camera=True``) or denied."""
    context = browser.new_context(permissions=["camera"] if camera else [],
                                  viewport={"width": viewport[0], "height": viewport[1]})
    return context.new_page()


def copy_notebook(src: Path, root: Path, name: str | None = None) -> str:
    """Copy ``src`` into the server root (a fresh copy per test: autosave writes outputs back)."""
    dst = root / (name or src.name)
    shutil.copyfile(src, dst)
    return dst.name


def write_notebook(root: Path, name: str, *cells: str) -> str:
    """Write a notebook of code cells (python3 kernelspec, no outputs) into the server root."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                     "source": src} for src in cells],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 4}
    (root / name).write_text(json.dumps(nb))
    return name


IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
PROMPTS_JS = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]"


def open_notebook(page: Any, lab: JupyterLab, name: str, timeout: float = 60.0) -> None:
    """Open ``name`` (in JupyterLab: in a fresh workspace, ``?reset``) and wait until its kernel is idle."""
    page.goto(lab.url(f"lab/tree/{name}", reset="") if lab.app == "jupyterlab" else lab.url(f"notebooks/{name}"))
    page.wait_for_selector(IDLE, timeout=timeout * 1000)


def run_all(page: Any, attempts: int = 3) -> None:
    """Run all cells via Run -> Run All Cells; retried when the click was a no-op (seen in ~1 of 4 runs)."""
    for _ in range(attempts):
        page.click(".jp-NotebookPanel .jp-Cell .jp-InputPrompt >> nth=0")
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']:not(.lm-mod-disabled)")
        with contextlib.suppress(Exception):
            page.wait_for_function(f"() => {PROMPTS_JS}.some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                                   timeout=5000)
            return
    raise RuntimeError(f"Run All did not start after {attempts} attempts")


def run_cell(page: Any, index: int, timeout: float = 60.0, attempts: int = 3) -> None:
    """Run code cell ``index`` in place (select it in command mode, Ctrl+Enter) and wait up to ``timeout``
    seconds for its new prompt number. The key press is retried when the cell did not even queue (JupyterLab
    sometimes drops it, as ``run_all`` sees); a queued cell is never run twice."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    before = cell.locator(".jp-InputArea-prompt").text_content()
    changed = (f"([i, before, pattern]) => {{ const p = {PROMPTS_JS}[i]?.textContent;"
               " return p !== before && new RegExp(pattern).test(p); }")
    for _ in range(attempts):
        cell.locator(".jp-InputPrompt").click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        with contextlib.suppress(Exception):
            poll(page, changed, arg=[index, before, r"\[(\*|\d+)\]"], timeout=5)
            break
    else:
        raise AssertionError(f"cell {index} did not run after {attempts} tries; prompt {before!r}")
    poll(page, changed, arg=[index, before, r"\[\d+\]"], timeout=timeout)


def wait_run_done(page: Any, timeout: float = 120.0) -> None:
    """Wait until every code cell has a prompt number and the kernel is idle."""
    page.wait_for_function(f"() => {{ const ps = {PROMPTS_JS}; "
                           "return ps.length && ps.every(p => /\\[\\d+\\]/.test(p.textContent)); }",
                           timeout=timeout * 1000)
    page.wait_for_selector(IDLE, timeout=timeout * 1000)


def poll(page: Any, js: str, timeout: float = 30.0, arg: Any = None) -> Any:
    """Wait until the JS expression/function ``js`` is truthy in the page; returns its value."""
    return page.wait_for_function(js, arg=arg, timeout=timeout * 1000).json_value()


def mouse_click(page: Any, selector: str) -> None:
    """Press and release the mouse at the middle of ``selector``'s box, as a person does (100 ms down)."""
    target = page.locator(selector).first
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None, f"{selector} is not on the page"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, delay=100)


def outputs_text(page: Any) -> str:
    """All output areas' text (to show kernel errors in assertion messages)."""
    js = "els => els.map(e => e.innerText).join('\\n')"
    return str(page.eval_on_selector_all(".jp-OutputArea-output", js))


CALIB_COUNTS_JS = "[...document.querySelectorAll('.emow-calib-count')].map(e => parseInt(e.textContent))"
"""Shot count of each CalibrationWidget row."""


def calib_burst(page: Any, row: int, minimum: int, attempts: int = 4) -> None:
    """Press Burst in CalibrationWidget row ``row`` until it holds ``minimum`` shots (a burst can miss the face)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        page.locator(".emow-calib-row").nth(row).locator(".emow-calib-burst").click()
        with contextlib.suppress(PlaywrightTimeout):
            poll(page, f"([row, n]) => {CALIB_COUNTS_JS}[row] >= n", arg=[row, minimum], timeout=4)
            return
    status = page.evaluate("() => document.querySelector('.emow-calib-status')?.innerText")
    raise AssertionError(f"row {row}: fewer than {minimum} shots; status: {status}")


# A notebook cell for browser tests: a button that inspects every live widget's state in the kernel and reports
# any picture (bytes, JPEG base64, image data URLs) in its `.emow-test-check-result` HTML.
CHECK_CELL = '''
import ipywidgets as _w
from ipywidgets.widgets.widget import _instances as _all_widgets


def _picture(v):
    if isinstance(v, bytes | bytearray | memoryview):
        return True
    if isinstance(v, str):
        return v.startswith(("/9j/", "data:image/jpeg", "data:image/webp"))
    if isinstance(v, dict):
        return "image/jpeg" in v or any(_picture(x) for x in v.values())
    if isinstance(v, list | tuple):
        return any(_picture(x) for x in v)
    return False


def _check(_):
    states = {m: x.get_state() for m, x in list(_all_widgets.items())}
    bad = [f"{type(_all_widgets[m]).__name__}.{k}" for m, s in states.items() for k, v in s.items() if _picture(v)]
    _result.value = f"checked {len(states)} widgets; pictures: {bad or 'none'}"


_result = _w.HTML()
_result.add_class("emow-test-check-result")
_button = _w.Button(description="check widget state")
_button.add_class("emow-test-check")
_button.on_click(_check)
_w.HBox([_button, _result])
'''

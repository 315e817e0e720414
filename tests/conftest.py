"""Shared fixtures: paths to the real assets in ../shared and session-wide pipeline pieces."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

from emowidgets.tools.clips import CLIPS, IMAGES, ROOT, SHARED, video_frames

ASSETS = SHARED / "assets"
FER = SHARED / "data" / "fer2013.npz"
__all__ = ["ASSETS", "CLIPS", "FER", "IMAGES", "ROOT", "SHARED", "can_mount_tmpfs", "video_frames", "wait_for"]


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` s (the one waiting helper of the
    kernel-side tests; the browser tests wait with Playwright)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out after {timeout:g} s waiting for {what or condition}"
        time.sleep(0.02)


def can_mount_tmpfs() -> bool:
    """Whether a child can mount a small tmpfs in its own user and mount namespace (``unshare -rm``): a real full
    or read-only disk without privileges (root ignores file modes, not a read-only mount)."""
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=8k tmpfs /mnt"], capture_output=True).returncode == 0


@pytest.fixture
def pipeline():
    """A fresh pipeline per test (cheap once the first has compiled): no tracker, follower, budget, ladder or
    clock state carries from one test to the next."""
    from emowidgets.pipeline import Pipeline

    with Pipeline.create_from_options(warmup=False) as p:
        yield p


@pytest.fixture(scope="session")
def classifier():
    from emowidgets.infer import EmotionClassifier

    return EmotionClassifier.create_from_options()


# Real-browser fixtures, one JupyterLab and one Chromium per test module (imports kept lazy: playwright is heavy).
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from browser import JupyterLab

    with JupyterLab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    """Chromium with the fake camera playing single_face.mp4."""
    from browser import launch_chromium, make_y4m

    y4m = make_y4m(CLIPS / "single_face.mp4", tmp_path_factory.mktemp("cam") / "single_face.y4m")
    b = launch_chromium(playwright, y4m)
    yield b
    b.close()


FAILED_CALL = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Mark a test whose body failed, for fixtures that keep evidence (the ``page`` fixture's screenshot)."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED_CALL] = True
    return report


@pytest.fixture
def page(request, lab, browser):
    """A page of the module's Chromium in a fresh context (camera granted; ``indirect`` param ``{"camera":
    False}`` denies it). Afterwards its context is closed and the lab's kernels killed; when the test failed, a
    screenshot goes to ``SCREENSHOT_DIR/failures/<test>.png`` and the cells' outputs to the captured teardown
    output, so a CI failure shows what the page showed."""
    from browser import SCREENSHOT_DIR, new_page, outputs_text

    options = getattr(request, "param", {})
    p = new_page(browser, camera=options.get("camera", True), viewport=options.get("viewport", (1280, 900)))
    yield p
    try:
        if request.node.stash.get(FAILED_CALL, False):
            shot = SCREENSHOT_DIR / "failures" / f"{request.node.name}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            p.screenshot(path=str(shot))
            print(f"screenshot of the failing page: {shot}\noutputs:\n{outputs_text(p)}")
    finally:
        p.context.close()
        lab.kill_kernels()

"""Browser tests of the other sources and end states: an ipywebrtc CameraStream, a screen share the headless
browser refuses, a stream closed from the kernel, and a browser with no camera at all.

One JupyterLab and one Playwright per module; two Chromiums (fake camera, and no fake device).
"""

from __future__ import annotations

from browser import (
    BOX,
    BROWSER_MARKS,
    CHROMIUM,
    new_page,
    open_notebook,
    outputs_text,
    poll,
    run_all,
    run_cell,
    write_notebook,
)

pytestmark = BROWSER_MARKS

EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
STREAM_CELL = ("from ipywebrtc import CameraStream\nimport emowidgets\n"
               "cam = CameraStream(constraints={'audio': False, 'video': {'width': 640, 'height': 480}})\n"
               "view = emowidgets.live(source=cam)\nview")
STATUS_JS = "() => document.querySelector('.emow-status')?.dataset.status"


def launch_chromium_without_camera(playwright) -> object:
    """Chromium without ``--use-fake-device-for-media-stream``: headless has no capture device at all."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--autoplay-policy=no-user-gesture-required"])


def wait_status(page, status: str, timeout: float = 60.0) -> str:
    """Wait until the camera widget shows ``status``; returns the status line's text."""
    try:
        page.wait_for_selector(f".emow-status[data-status='{status}']", timeout=timeout * 1000)
    except Exception as exc:
        shown = page.evaluate("() => document.querySelector('.emow-status')?.textContent")
        raise AssertionError(f"status never {status!r} (shows {shown!r}); outputs: {outputs_text(page)}") from exc
    return str(page.text_content(".emow-status"))


def test_ipywebrtc_stream_reaches_running_with_face_box(lab, browser):
    name = write_notebook(lab.root, "stream.ipynb", STREAM_CELL)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        wait_status(page, "running")
        try:
            label = poll(page, f"() => document.querySelector('{BOX} .emow-label')?.textContent", timeout=60)
        except Exception as exc:
            raise AssertionError(f"no face box; outputs: {outputs_text(page)}") from exc
        assert label.split()[0] in EMOTIONS
        # The frames came through ipywebrtc's stream (no getUserMedia of our own) and over the JPEG comm.
        stats = page.evaluate("() => document.querySelector('.emow-camera').emowStats")
        assert stats["sent"] > 0 and stats["results"] > 0
        track = page.evaluate("""async () => { const v = document.querySelector('.emow-video');
                                 const t = v.srcObject.getVideoTracks()[0];
                                 return { label: t.label, state: t.readyState, w: v.videoWidth }; }""")
        assert track["state"] == "live" and track["w"] == 640
        assert track["label"].endswith("single_face.y4m")
    finally:
        page.context.close()
        lab.kill_kernels()


def test_closing_the_camera_stream_shows_stream_ended(lab, browser):
    name = write_notebook(lab.root, "stream_close.ipynb", STREAM_CELL, "cam.close()")
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_cell(page, 0)
        wait_status(page, "running")
        poll(page, "() => document.querySelector('.emow-camera').emowStats.results > 0", timeout=60)
        run_cell(page, 1)
        wait_status(page, "stream ended", timeout=15)
        assert page.query_selector(BOX) is None
        sent = page.evaluate("() => document.querySelector('.emow-camera').emowStats.sent")
        page.wait_for_timeout(1000)  # no frames are sent once the stream has ended
        assert page.evaluate("() => document.querySelector('.emow-camera').emowStats.sent") == sent
    finally:
        page.context.close()
        lab.kill_kernels()


# Headless Chromium has no screen picker: without --use-fake-ui-for-media-stream getDisplayMedia neither
# resolves nor rejects (pending for good, with or without a user gesture, and --auto-reject-capture changes
# nothing). This wraps the real call so the test can then do what the picker's Cancel button does in a
# headed Chromium: reject it with NotAllowedError "Permission denied by user".
CANCELLABLE_SHARE = """(() => {
  const md = navigator.mediaDevices, real = md.getDisplayMedia.bind(md);
  window.__shareCalls = 0;
  md.getDisplayMedia = (opts) => new Promise((resolve, reject) => {
    window.__shareCalls++;
    window.__cancelShare = () => reject(new DOMException('Permission denied by user', 'NotAllowedError'));
    real(opts).then(resolve, reject);
  });
})();"""


def test_screen_share_waits_for_the_picker_then_shows_share_cancelled(lab, browser):
    name = write_notebook(lab.root, "screen.ipynb", "import emowidgets\nemowidgets.live(source='screen')")
    page = new_page(browser, camera=True)
    page.context.add_init_script(CANCELLABLE_SHARE)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        assert wait_status(page, "waiting for permission") == "waiting for permission"
        poll(page, "() => window.__shareCalls === 1", timeout=10)
        page.wait_for_timeout(2000)  # the real getDisplayMedia stays pending: no error, no frames
        assert page.evaluate(STATUS_JS) == "waiting for permission"
        assert page.evaluate("() => document.querySelector('.emow-camera').emowStats.sent") == 0
        page.evaluate("() => window.__cancelShare()")
        text = wait_status(page, "share cancelled", timeout=10)
        assert text == "share cancelled: NotAllowedError: Permission denied by user"
        assert page.query_selector(BOX) is None
    finally:
        page.context.close()
        lab.kill_kernels()


def test_browser_without_camera_shows_no_camera(lab, playwright):
    name = write_notebook(lab.root, "nocam.ipynb", "import emowidgets\nemowidgets.live()")
    b = launch_chromium_without_camera(playwright)
    page = new_page(b, camera=True)
    try:
        open_notebook(page, lab, name)
        run_all(page)
        text = wait_status(page, "no camera")
        assert "NotFoundError" in text
        assert page.query_selector(BOX) is None
    finally:
        page.context.close()
        b.close()
        lab.kill_kernels()

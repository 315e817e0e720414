"""Frames sized to need and what was given up, in JupyterLab + headless Chromium (single_face.mp4 as the camera).

The sizing tests answer each frame from a plain ``on_frame`` CameraWidget with result messages that ask for the
scale a face of ``WANT`` pixels needs, the way the pipeline does: the widget's sizing logic (steps, the hold
before shrinking, growing at once, ``min_frame_scale``, ``resize``) runs in the real page against a real kernel.
"""

from __future__ import annotations

import json
from typing import Any

from browser import BROWSER_MARKS, new_page, open_notebook, outputs_text, poll, run_cell, write_notebook

pytestmark = BROWSER_MARKS

TIMES = "\N{MULTIPLICATION SIGN}"
STATS = "document.querySelector('.emow-camera')?.emowStats"

# The kernel side of the sizing tests: each frame's real JPEG size is read from its header, and the result asks
# for the scale at which the face (a quarter of the frame's width) would be WANT pixels wide. The widget shrinks
# frames only with 10 % to spare: 70 px of a 160 px face (scale 0.44) gives half-size frames, 80 would not.
SIZING_CELL = '''
import json, time
import ipywidgets as w
import simplejpeg
from emowidgets.widgets import CameraWidget

WANT = 70
DELAY = 0.0  # extra kernel time per frame: slower than the camera, so max_in_flight frames are always out
FACE = [0.3, 0.2, 0.25, 0.4]
frames = []  # (kernel time, width, height, seq) of every JPEG received
marks = {}
info = w.Label()
info.add_class("emow-test-info")
received = w.Label("0")  # frames received so far: the test waits on this count, not on a fixed time
received.add_class("emow-test-received")


def on_frame(jpeg, seq, timestamp_ms):
    time.sleep(DELAY)
    height, width, _, _ = simplejpeg.decode_jpeg_header(bytes(jpeg))
    frames.append((time.monotonic(), width, height, seq))
    received.value = str(len(frames))
    face = {"box": FACE, "id": 1, "label": "happy", "score": 0.9, "age": 0}
    cam.send({"type": "result", "seq": seq, "faces": [face], "ms": 1.0, "level": "",
              "scale": WANT / (FACE[2] * width)})
    info.value = f"trait={cam.frame_size[0]}x{cam.frame_size[1]} scale={cam.frame_scale}"


cam = CameraWidget(on_frame=on_frame)
w.VBox([cam, info, received])
'''


# Loaded before the page: keeps the listeners render() adds on the document and on camera tracks, and the pending
# requestVideoFrameCallbacks, so a test can check that the widget's cleanup removed every one of them.
WATCH_LISTENERS = """(() => {
  const live = (window.emowLive = { listeners: {}, frameCallbacks: new Set() });
  const watched = (target, type) => (target === document && type.startsWith("emow-")) ||
    (typeof MediaStreamTrack !== "undefined" && target instanceof MediaStreamTrack);
  const proto = EventTarget.prototype, add = proto.addEventListener, remove = proto.removeEventListener;
  proto.addEventListener = function (type, fn, ...rest) {
    if (watched(this, type)) (live.listeners[type] ||= new Set()).add(fn);
    return add.call(this, type, fn, ...rest);
  };
  proto.removeEventListener = function (type, fn, ...rest) {
    if (watched(this, type)) live.listeners[type]?.delete(fn);
    return remove.call(this, type, fn, ...rest);
  };
  const video = HTMLVideoElement.prototype, request = video.requestVideoFrameCallback;
  const cancel = video.cancelVideoFrameCallback;
  video.requestVideoFrameCallback = function (fn) {
    const handle = request.call(this, (...args) => { live.frameCallbacks.delete(handle); fn(...args); });
    live.frameCallbacks.add(handle);
    return handle;
  };
  video.cancelVideoFrameCallback = function (handle) {
    live.frameCallbacks.delete(handle);
    return cancel.call(this, handle);
  };
})();"""
LIVE_JS = ("() => ({frameCallbacks: window.emowLive.frameCallbacks.size, listeners: Object.fromEntries("
           "Object.entries(window.emowLive.listeners).map(([type, fns]) => [type, fns.size]))})")
ALL_REMOVED = {"frameCallbacks": 0, "listeners": {"emow-hover": 0, "ended": 0}}


def stats(page: Any) -> dict[str, Any]:
    return dict(page.evaluate(f"() => {STATS}"))


def wait_size(page: Any, size: tuple[int, int], timeout: float = 20) -> None:
    try:
        poll(page, f"([w, h]) => {{ const s = {STATS}; return s && s.frameSize[0] === w && s.frameSize[1] === h; }}",
             arg=list(size), timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"frames never reached {size}: {stats(page)['sizes']}; {outputs_text(page)}") from exc


def cell_stdout(page: Any, index: int) -> str:
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    return str(cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']").text_content())


def test_frames_follow_the_scale_results_ask_for(lab, browser):
    name = write_notebook(
        lab.root, "sizing.ipynb", SIZING_CELL,
        'print(json.dumps([cam.frame_size, cam.frame_scale]))\nmarks["min"] = len(frames)\nWANT = 10',
        'marks["big"] = len(frames)\nWANT = 400\nDELAY = 0.06',
        'marks["off"] = len(frames)\ncam.resize = False\nWANT = 70\nprint(marks["off"])',
        'print(json.dumps({"frames": [f[1:3] for f in frames], "t": [f[0] for f in frames],'
        ' "seq": [f[3] for f in frames], "marks": marks, "in_flight": cam.max_in_flight}))',
        "cam.close()")
    page = new_page(browser, camera=True)
    page.add_init_script(WATCH_LISTENERS)
    try:
        open_notebook(page, lab, name)
        workers_before = len(page.workers)
        run_cell(page, 0)
        poll(page, f"() => {STATS}?.sent > 0", timeout=30)
        running = page.evaluate(LIVE_JS)
        assert running["listeners"]["emow-hover"] == 1 and running["listeners"]["ended"] == 1, running
        # The face is 160 px wide in a 640x480 frame, 70 are asked for: after the hold, frames go at half size.
        wait_size(page, (320, 240))
        poll(page, "() => document.querySelector('.emow-test-info')?.textContent === 'trait=320x240 scale=0.5'",
             timeout=10)
        s = stats(page)
        assert s["encoder"] == "worker"
        assert len(page.workers) == workers_before + 1
        assert s["frameScale"] == 0.5
        poll(page, f"() => {STATS}.cameraFps > 5", timeout=10)
        run_cell(page, 1)  # 10 px asked for: not below min_frame_scale (1/4)
        assert json.loads(cell_stdout(page, 1)) == [[320, 240], 0.5]
        wait_size(page, (160, 120))
        run_cell(page, 2)  # 400 px asked for: back to full size at once (with every in-flight slot taken)
        wait_size(page, (640, 480))
        run_cell(page, 3)  # resize off: full size even though half would do
        off = int(cell_stdout(page, 3))
        poll(page, "(n) => +document.querySelector('.emow-test-received').textContent >= n", arg=off + 20, timeout=60)
        run_cell(page, 4)
        got = json.loads(cell_stdout(page, 4))
        sizes = [tuple(f) for f in got["frames"]]
        t, seqs, marks, in_flight = got["t"], got["seq"], got["marks"], got["in_flight"]
        assert sizes[0] == (640, 480)
        assert set(sizes) == {(640, 480), (320, 240), (160, 120)}, set(sizes)
        half = sizes.index((320, 240))
        assert t[half] - t[0] >= 0.9  # smaller only once the results asked for it for a second
        assert sizes.index((160, 120)) > marks["min"]
        assert min(t[i] for i, f in enumerate(sizes) if f == (160, 120)) - t[marks["min"]] >= 0.9
        # Bigger at once: frame marks["big"] is the first answered with 400 px; when its result reached the page,
        # at most in_flight - 1 newer frames were un-acked (sent or being encoded) and every later one goes full
        # size. Counted by seq, which the protocol bounds, not by frames seen in some stretch of time.
        after_big = [size for size, s in zip(sizes, seqs, strict=True) if s >= seqs[marks["big"]] + in_flight]
        assert after_big and set(after_big) == {(640, 480)}, sizes[marks["big"]:]
        # Resize off: the trait change reached the page before any ack of frame marks["off"] or later, so at most
        # in_flight frames from there on were sent small.
        after_off = [size for size, s in zip(sizes, seqs, strict=True) if s >= seqs[off] + in_flight]
        assert off == marks["off"] and len(after_off) >= 10 and set(after_off) == {(640, 480)}, sizes[off:]
        run_cell(page, 5)  # closing the widget ends its encoder worker and removes every listener it added
        try:
            poll(page, "() => !emowLive.frameCallbacks.size && Object.values(emowLive.listeners).every((s) => !s.size)",
                 timeout=30)
        except Exception as exc:
            raise AssertionError(f"left behind after close: {page.evaluate(LIVE_JS)}") from exc
        assert page.evaluate(LIVE_JS) == ALL_REMOVED
        for _ in range(300):  # page.workers changes as Playwright hears of it, i.e. while the page is waited on
            if len(page.workers) == workers_before:
                break
            page.wait_for_timeout(100)
        assert len(page.workers) == workers_before
    finally:
        page.context.close()
        lab.kill_kernels()


def test_frames_are_sized_without_a_worker_too(lab, browser):
    """Where the page has no OffscreenCanvas the JPEG comes from canvas.toBlob on the page, sized the same way."""
    name = write_notebook(lab.root, "sizing_canvas.ipynb", SIZING_CELL)
    page = new_page(browser, camera=True)
    page.add_init_script("delete globalThis.OffscreenCanvas;")
    try:
        open_notebook(page, lab, name)
        assert page.evaluate("() => typeof OffscreenCanvas") == "undefined"
        workers_before = len(page.workers)
        run_cell(page, 0)
        wait_size(page, (320, 240))
        s = stats(page)
        assert s["encoder"] == "canvas"
        assert len(page.workers) == workers_before
        assert s["sizes"]["640x480"] >= 1
    finally:
        page.context.close()
        lab.kill_kernels()


# Results as the pipeline builds them (a quality level, per-face ages), fed to a gauge and a class view.
DISPLAY_CELL = '''
import numpy as np
import ipywidgets as w
from emowidgets.classview import ClassView
from emowidgets.vocab import EMOTIONS, FrameResult
from emowidgets.widgets import EmotionGauge


def result(ages, level="main · TTA off · detect 5/s"):
    n = len(ages)
    boxes = np.array([[20 + 150 * i, 60, 60 + 20 * i, 80 + 20 * i] for i in range(n)], np.float32)
    probs = np.tile(np.eye(len(EMOTIONS), dtype=np.float32)[EMOTIONS.index("happy")], (n, 1))
    return FrameResult(seq=1, timestamp_ms=0, width=320, height=240, boxes=boxes, scores=np.ones(n, np.float32),
                       track_ids=np.arange(1, n + 1), probs=probs, raw_probs=probs,
                       embeddings=np.zeros((n, 8), np.float32), labels=EMOTIONS,
                       timings={"total": 5.0},
                       ages_ms=np.array(ages, np.float32), level=level)


gauge = EmotionGauge()
view = ClassView(min_frames=1)
gauge.update(result([0, 1234]))  # the gauge shows the largest face: the second, classified 1.2 s ago
for _ in range(2):
    view.update(result([0, 1234]))
view.refresh()
w.VBox([gauge, view])
'''
FRESH_CELL = '''
import time
time.sleep(0.2)
gauge.update(result([0, 0], level=""))
view.update(result([0, 0], level=""))
view.refresh()
'''
DISPLAY_JS = """() => { const q = (s) => document.querySelector(s);
  return {level: q('.emow-gauge-level')?.textContent, levelShown: !q('.emow-gauge-level')?.hidden,
          stale: q('.emow-gauge-stale')?.textContent, staleShown: !q('.emow-gauge-stale')?.hidden,
          cvLevel: q('.emow-cv-level')?.textContent, tips: [q('.emow-gauge-level')?.title, q('.emow-cv-level')?.title],
          fps: q('.emow-gauge-fps')?.textContent,
          ages: Object.fromEntries([...document.querySelectorAll('.emow-cv-tile')].map(
            (t) => [t.dataset.id, t.querySelector('.emow-cv-age')?.textContent || '']))}; }"""


def test_gauge_and_class_view_show_level_and_stale_ages(lab, browser):
    name = write_notebook(lab.root, "display.ipynb", DISPLAY_CELL, FRESH_CELL)
    page = new_page(browser, camera=True)
    try:
        open_notebook(page, lab, name)
        run_cell(page, 0)
        try:
            poll(page, "() => document.querySelectorAll('.emow-cv-tile').length === 2", timeout=30)
        except Exception as exc:
            raise AssertionError(f"no tiles; outputs: {outputs_text(page)}") from exc
        shown = page.evaluate(DISPLAY_JS)
        assert shown["levelShown"] and shown["level"] == f"main · TTA off · detect 5/s · 320{TIMES}240"
        assert shown["staleShown"] and shown["stale"] == "updated 1.2 s ago"
        assert shown["cvLevel"] == f"main · TTA off · detect 5/s · 320{TIMES}240"
        assert shown["fps"].endswith(" fps")  # the rate, once, in the gauge's header
        for tip in shown["tips"]:  # the level line explained in words, as its tooltip
            assert "TTA on: each face is also read mirrored" in tip and "detect N/s" in tip, tip
        assert shown["ages"] == {"1": "", "2": "1.2 s ago"}
        run_cell(page, 1)  # fresh scores, no level: the age lines go, the level line keeps the size
        poll(page, "() => document.querySelector('.emow-gauge-stale').hidden", timeout=10)
        poll(page, "() => !document.querySelector('.emow-cv-age')", timeout=10)
        shown = page.evaluate(DISPLAY_JS)
        assert shown["level"] == shown["cvLevel"] == f"320{TIMES}240"  # the processed rate is shown once, beside it
        assert shown["ages"] == {"1": "", "2": ""}
    finally:
        page.context.close()
        lab.kill_kernels()

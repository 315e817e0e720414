"""The entry points as a user meets them: re-running a ``live()`` cell, ``with`` blocks, errors that name the valid
choices (and show as one line in IPython), keyword-only frame arguments, timestamps that go backwards."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from conftest import CLIPS, ROOT, video_frames

import emowidgets
from emowidgets.errors import OptionsError, VideoFileError
from emowidgets.infer import ClassifierOptions
from emowidgets.pipeline import Pipeline, PipelineState
from emowidgets.sources import entry_options, pipeline_options

SHORT = CLIPS / "single_face_short.mp4"  # stands in for the kernel's camera


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("emowidgets-session", "emowidgets-pipeline")]


def _wait_ended(view: emowidgets.LiveView) -> None:
    end = time.monotonic() + 120
    while view.camera.status != "video ended" and time.monotonic() < end:
        time.sleep(0.1)
    assert view.camera.status == "video ended", view.camera.value


def test_rerunning_a_live_cell_replaces_the_view_it_made_before():
    pipelines: list[weakref.ref[Pipeline]] = []
    rss: list[float] = []
    for _ in range(5):  # one call site, as a re-run notebook cell
        view = emowidgets.live("Kernel", model="fast", device=str(SHORT))
        pipelines.append(weakref.ref(view.pipeline))
        assert len(_worker_threads()) <= 1, _worker_threads()
        _wait_ended(view)
        gc.collect()
        rss.append(_rss_mb())
    print(f"RSS after each of 5 runs (MB): {[round(r) for r in rss]}")
    print("old pipelines still referenced:", sum(p() is not None for p in pipelines[:-1]))
    assert all(p() is None or p().state is PipelineState.CLOSED for p in pipelines[:-1])
    assert view.pipeline.state is not PipelineState.CLOSED
    assert rss[-1] - rss[0] < 350, rss  # 4 pipelines kept cost 1,452 MB in issue 24; ~220 MB measured here
    with view:  # a with-block closes it
        assert view.gauge.faces == 1
    assert view.pipeline.state is PipelineState.CLOSED
    assert view.pipeline.listener_count == 0 and not view.pipeline.has_listener(view.gauge.update)


def test_a_camera_option_the_source_does_not_take_names_those_it_does():
    with pytest.raises(OptionsError, match=r'live\("kernel"\) takes no width; its camera options are size'):
        emowidgets.live("kernel", width=640)
    with pytest.raises(OptionsError, match="takes no size; its camera options are width, height, quality"):
        emowidgets.live("camera", size=(640, 480))


def test_wrong_names_list_the_valid_ones():
    wrong_source = "source must be 'camera', 'screen', 'kernel', an ipywebrtc MediaStream or None, not 'webcam'"
    with pytest.raises(OptionsError, match=wrong_source) as info:
        emowidgets.live("webcam")
    with pytest.raises(OptionsError, match=r"'main' \(accurate\) or 'fast'.*'big' is neither"):
        emowidgets.live(model="big")
    with pytest.raises(OptionsError, match="did you mean 'main'"):
        ClassifierOptions(model="mian")
    assert ClassifierOptions(model="Fast").model == "fast"
    wrong_class = "source must be 'screen', 'camera', an ipywebrtc MediaStream or the path of a video file, not 'Scren'"
    with pytest.raises(OptionsError, match=wrong_class):
        emowidgets.classroom("Scren")
    with pytest.raises(OptionsError, match=r"source must be 'screen', 'camera', an ipywebrtc .* not 42"):
        emowidgets.classroom(42)  # one check for both entry points: the same form as live()'s
    assert "Traceback" not in str(info.value)


def test_one_detector_knob_for_both_entry_points_and_preset_deprecated(tmp_path):
    wrong = r"detector must be 'short' \(webcam distance\), 'full' \(small, distant faces\) or 'gallery'.*'medium'"
    with pytest.raises(OptionsError, match=wrong):
        emowidgets.live(detector="medium")
    with pytest.raises(OptionsError, match=wrong):
        emowidgets.classroom("screen", detector="medium")
    assert entry_options("full", "fast").detector.model == "full"
    assert entry_options("Gallery", "fast") == pipeline_options("gallery", "fast")  # classroom's former preset
    assert entry_options("short", "main") == pipeline_options("camera", "main")
    with pytest.warns(DeprecationWarning, match="use detector='short'"), \
            pytest.raises(OptionsError, match=r"preset must be 'camera' or 'gallery'.*not 'lecture'"):
        emowidgets.classroom("screen", preset="lecture")
    with pytest.warns(DeprecationWarning, match=r"preset=.... is deprecated"), \
            pytest.raises(OptionsError, match="give detector= only"):
        emowidgets.classroom("screen", preset="gallery", detector="gallery")
    with pytest.raises(OptionsError, match=r"classroom\(\) with a video file takes no width; it takes no camera"):
        emowidgets.classroom(CLIPS / "multi_face.mp4", width=640)


def test_a_missing_video_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VideoFileError, match=f"no such video file: {tmp_path / 'lesson.mp4'} .*notebook's folder"):
        emowidgets.classroom("lesson.mp4")


def test_frame_arguments_are_keywords_and_positional_ones_are_deprecated(pipeline: Pipeline):
    frame = video_frames(SHORT)[0]
    with pytest.warns(DeprecationWarning, match=r"pass seq= and timestamp_ms= by keyword"):
        old = pipeline.process_array(frame, 7, 1000)
    assert (old.seq, old.timestamp_ms) == (7, 1000)
    new = pipeline.process_array(frame, seq=8, timestamp_ms=1033)
    assert (new.seq, new.timestamp_ms) == (8, 1033)
    with pytest.raises(TypeError, match="keyword-only seq=, timestamp_ms="):
        pipeline.process_array(frame, 1, 2, 3)


def test_a_timestamp_going_backwards_starts_a_new_stream(pipeline: Pipeline, caplog):
    frames = video_frames(SHORT)[:6]
    first = [pipeline.process_array(f, seq=i, timestamp_ms=5000 + 33 * i) for i, f in enumerate(frames)]
    assert len({int(r.track_ids[0]) for r in first}) == 1  # one face, one track
    with caplog.at_level(logging.INFO, logger="emowidgets.pipeline"):
        again = pipeline.process_array(frames[0], seq=0, timestamp_ms=100)
    assert "a new stream, tracks forgotten" in caplog.text
    assert len(again.boxes) == 1 and int(again.track_ids[0]) > int(first[-1].track_ids[0])


def test_errors_show_as_one_line_in_ipython_and_the_traceback_stays_available():
    script = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_cell('import emowidgets')\n"
        "ip.run_cell('emowidgets.live(\"webcam\")')\n"
        "import sys; print('---', file=sys.stderr); sys.stderr.flush()\n"
        "ip.run_cell('%tb')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    before, _, after = (out.stderr + out.stdout).partition("---")
    assert "emowidgets: source must be 'camera', 'screen', 'kernel'" in before, out
    assert "Traceback" not in before and "OptionsError" not in before, before
    assert "OptionsError" in after + out.stdout, out


"""The live pipeline on real video frames: emotion response, compile count, bad frames, threading."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import simplejpeg
from conftest import CLIPS, IMAGES, video_frames
from PIL import Image
from safetensors import safe_open

from emowidgets.autocalib import AutoCalibrationOptions
from emowidgets.errors import FrameError
from emowidgets.infer import ClassifierOptions
from emowidgets.vocab import EMOTIONS

HAPPY = EMOTIONS.index("happy")


def jpeg(rgb: np.ndarray) -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=80)


def test_happy_rises_neutral_to_smile(pipeline):
    """single_face.mp4 goes neutral (0-3 s) -> clear smile (5-13 s): mean P(happy) must rise."""
    frames = video_frames(CLIPS / "single_face.mp4", every=5)
    happy = np.array([pipeline.process_bytes(jpeg(f), i).raw_probs[0, HAPPY] for i, f in enumerate(frames)])
    third = len(happy) // 3
    assert happy[-third:].mean() > happy[:third].mean() + 0.3
    assert happy[-third:].mean() > 0.5


def test_sad_to_happy(pipeline):
    frames = video_frames(CLIPS / "sad_to_happy.mp4", every=12)  # 2 frames per second
    happy = [r.raw_probs[0, HAPPY] if len(r.raw_probs) else np.nan
             for r in (pipeline.process_array(f) for f in frames)]
    assert np.nanmean(happy[14:]) > np.nanmean(happy[:4]) + 0.3


def test_compile_count_constant_as_faces_vary(pipeline):
    clf = pipeline.classifier
    for n in (1, 2, 4, 8, 16, 32, 64):  # compile every bucket once
        clf.classify(np.zeros((n, 48, 48), np.float32))
    before = clf.compile_count
    blank = np.full((480, 640, 3), 90, np.uint8)
    multi = video_frames(CLIPS / "multi_face.mp4", every=50)
    single = video_frames(CLIPS / "single_face.mp4", every=100)
    counts = []
    for frame in [blank, *multi, *single, blank]:
        counts.append(len(pipeline.process_array(frame).boxes))
    for n in range(0, 40, 3):
        clf.classify(np.zeros((n, 48, 48), np.float32))
    assert {0, 1, 4} <= set(counts)
    assert clf.compile_count == before


def _bad_frames() -> dict[str, bytes]:
    good = jpeg(video_frames(CLIPS / "single_face.mp4", every=300)[0])
    rgba, gray, tiny = io.BytesIO(), io.BytesIO(), io.BytesIO()
    Image.new("RGBA", (320, 240), (10, 20, 30, 128)).save(rgba, "PNG")
    Image.new("L", (320, 240), 100).save(gray, "PNG")
    Image.new("RGB", (1, 1)).save(tiny, "PNG")
    huge = simplejpeg.encode_jpeg(np.zeros((8000, 8000, 3), np.uint8), quality=10)
    return {"corrupt": good[: len(good) // 2] + b"garbage" * 10, "empty": b"", "1x1": tiny.getvalue(),
            "8000x8000": huge, "rgba": rgba.getvalue(), "gray": gray.getvalue(), "text": b"not an image"}


def test_bad_frames_raise_clear_errors(pipeline):
    bad = _bad_frames()
    for name, why in [("corrupt", "corrupt JPEG: Premature end"), ("empty", "empty frame"),
                      ("1x1", "frame is 1x1; at least 16 px per side"), ("8000x8000", "over the 16777216-pixel limit"),
                      ("text", "frames must be JPEG, PNG or WebP")]:
        with pytest.raises(FrameError, match=why):
            pipeline.process_bytes(bad[name])
    for name in ("rgba", "gray"):  # unusual but valid: processed, no face
        assert len(pipeline.process_bytes(bad[name]).boxes) == 0


def test_worker_survives_bad_frames_and_counts_them():
    from emowidgets.pipeline import Pipeline, PipelineOptions

    results = []
    with Pipeline.create_from_options(PipelineOptions(queue_size=64), warmup=False) as p:
        p.add_listener(results.append)
        p.start()
        good = jpeg(video_frames(CLIPS / "single_face.mp4", every=300)[0])
        bad = _bad_frames()
        for i, data in enumerate([good, bad["corrupt"], bad["empty"], bad["1x1"], bad["8000x8000"], bad["text"],
                                  bad["rgba"], bad["gray"], good]):
            p.submit(data, seq=i)
        deadline = time.monotonic() + 60
        while p.stats.processed + p.stats.bad_frames < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.stats.bad_frames == 5
        assert p.stats.processed == 4
        assert [r.seq for r in results] == [0, 6, 7, 8]
        assert len(results[-1].boxes) == 1


def test_queue_drops_oldest():
    from emowidgets.pipeline import Pipeline, PipelineOptions

    with Pipeline.create_from_options(PipelineOptions(queue_size=2), warmup=False) as p:
        skipped: list[int] = []
        p.add_skip_listener(skipped.append)
        for i in range(5):  # worker not started: everything stays queued
            p.submit(b"x", seq=i)
        assert p.stats.dropped == 3
        assert skipped == [0, 1, 2]  # a sender waiting for results hears about every dropped frame
        assert p.queued == (3, 4)


def test_result_message_has_no_pixels(pipeline):
    frame = video_frames(CLIPS / "multi_face.mp4", every=100)[0]
    msg = pipeline.process_array(frame).to_message()
    assert len(msg["faces"]) == 4
    for face in msg["faces"]:
        assert set(face) == {"box", "id", "label", "score", "age", "tile"}
        assert all(0 <= v <= 1 for v in face["box"])
        assert face["tile"] == -1  # the camera preset looks for no call grid
    assert set(msg) == {"seq", "faces", "ms", "level", "scale", "grid"}
    assert msg["grid"] == {"label": "", "source": "none", "tiles": [], "names": []}
    assert len(str(msg)) < 2000


def test_still_images_do_not_blend_with_the_previous_photo(pipeline):
    """process_image: the second of two different photos gets the same result as when it comes alone."""
    smile = (IMAGES / "pair_franck_smile.jpg").read_bytes()
    calm = (IMAGES / "pair_franck_neutral.jpg").read_bytes()
    alone = pipeline.process_image(calm)
    pipeline.process_image(smile)
    second = pipeline.process_image(calm)
    assert len(alone.boxes) == 1 and (alone.track_ids == 0).all()
    np.testing.assert_allclose(second.probs, alone.probs, atol=1e-5)
    np.testing.assert_array_equal(second.probs, second.raw_probs)
    from_array = pipeline.process_image(np.asarray(Image.open(io.BytesIO(calm)).convert("RGB")))
    np.testing.assert_allclose(from_array.probs, alone.probs, atol=0.02)  # same pixels (decoders differ slightly)
    # the frame path, by contrast, smooths the same face across calls (what live video wants)
    pipeline.tracker.reset()
    pipeline.process_bytes(smile)
    blended = pipeline.process_bytes(calm)
    assert np.abs(blended.probs - alone.probs).max() > 0.05
    with pytest.raises(FrameError, match="not an image this package knows"):
        pipeline.process_image(b"not an image")


def test_auto_calibration_shifts_each_track_after_its_window():
    """A real clip, auto-calibration on: the first frames gather the face's resting embedding, then it is shifted."""
    from emowidgets.pipeline import Pipeline, PipelineOptions

    frames = video_frames(CLIPS / "single_face.mp4", every=5)
    options = PipelineOptions(auto_calibrate=True, auto_calibration=AutoCalibrationOptions(frames=5))
    with Pipeline.create_from_options(options, warmup=False) as p:
        results = [p.process_array(f) for f in frames[:8]]
        assert p.autocalib is not None
        tid = int(results[-1].track_ids[0])
        assert p.autocalib.progress(tid) == 1.0
        raw = p.classifier.classify(_crop(p, frames[7]))
        # before the window fills the embeddings are the backbone's; after, they are shifted
        np.testing.assert_allclose(results[0].embeddings, _embed(p, frames[0]), atol=1e-4)
        assert np.abs(results[7].embeddings - raw.embeddings).max() > 1e-2
        assert not np.allclose(results[7].raw_probs, raw.probs, atol=1e-3)
        # "needs attention" reads the base model's own scores, uncalibrated; the per-face state says "learning"
        np.testing.assert_allclose(results[7].uncalibrated, raw.probs, atol=1e-4)
        np.testing.assert_allclose([r.resting[0] for r in results[:5]], [0.2, 0.4, 0.6, 0.8, 1.0])
        still = p.process_image(frames[7])  # still images are never auto-calibrated
        np.testing.assert_allclose(still.raw_probs, raw.probs, atol=1e-4)


def _crop(p, frame):
    from emowidgets.preprocess import crop_faces

    return crop_faces(frame, p.detector.detect(frame), p.detector.options.model)


def _embed(p, frame):
    return p.classifier.classify(_crop(p, frame)).embeddings


def test_auto_calibration_needs_a_reference_in_the_model_file(tmp_path):
    from safetensors.numpy import load_file, save_file

    from emowidgets.assets import model_path
    from emowidgets.errors import ModelFileError
    from emowidgets.pipeline import Pipeline, PipelineOptions

    src = model_path("fast")
    with safe_open(str(src), framework="numpy") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != "neutral_reference"}
    path = tmp_path / "no_reference.safetensors"
    save_file(load_file(str(src)), str(path), metadata=meta)
    options = PipelineOptions(classifier=ClassifierOptions(model=str(path)), auto_calibrate=True)
    with pytest.raises(ModelFileError, match=r"no neutral reference.*scripts/neutral_reference\.py"):
        Pipeline.create_from_options(options, warmup=False)


def test_phantom_tracks_are_never_reported(tmp_path):
    """A shared screen of moving shapes (ffmpeg testsrc2) makes tracks but no reported face, as the second look
    refuses them; without it the same frames report some."""
    import dataclasses
    import subprocess

    from emowidgets.pipeline import Pipeline
    from emowidgets.sources import pipeline_options

    path = tmp_path / "testsrc2.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=10", "-t", "6",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    frames = video_frames(path)
    reported = {}
    for check in (True, False):
        options = dataclasses.replace(pipeline_options("gallery", "fast"), check_faces=check)
        with Pipeline.create_from_options(options, warmup=False) as p:
            reported[check] = sum(len(p.process_array(f, seq=i, timestamp_ms=1 + i * 100).track_ids)
                                  for i, f in enumerate(frames))
    assert reported[False] > 0, "testsrc2 no longer makes phantoms"
    assert reported[True] == 0

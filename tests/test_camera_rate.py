"""Doing less per frame (issue 14): faces followed between detections, the classification budget, the ladder."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import CLIPS, video_frames

from emowidgets.boxes import iou_matrix
from emowidgets.budget import BudgetOptions, ClassifyBudget
from emowidgets.detect import FaceDetector
from emowidgets.errors import OptionsError
from emowidgets.infer import ClassifierOptions
from emowidgets.ladder import LEVELS, LadderOptions, QualityLadder
from emowidgets.motion import FaceFollower, FollowOptions
from emowidgets.pipeline import Pipeline, PipelineOptions
from emowidgets.preprocess import to_gray


@pytest.fixture(scope="module")
def single() -> np.ndarray:
    return video_frames(CLIPS / "single_face.mp4")[:60]


def test_followed_box_stays_on_the_face(single: np.ndarray):
    """Four frames after a detection, the followed box still overlaps a fresh detection almost exactly; a
    frame without the face loses it, so the pipeline detects again."""
    with FaceDetector.create_from_options() as detector:
        follower = FaceFollower()
        for start in range(0, 50, 5):
            follower.reset(to_gray(single[start]), detector.detect(single[start]))
            for frame in single[start + 1 : start + 5]:
                followed = follower.follow(to_gray(frame))
                assert followed is not None and len(followed) == 1
            truth = detector.detect(single[start + 4])
            assert iou_matrix(followed.boxes, truth.boxes)[0, 0] > 0.9
        blank = np.full_like(single[0], 128)
        assert follower.follow(to_gray(blank)) is None
        assert follower.follow(to_gray(single[10][:240])) is None  # another frame size: detect again


def test_follow_options_are_checked():
    with pytest.raises(OptionsError, match=r"window must be >= 3.*got 1, 3"):
        FollowOptions(window=1)
    with pytest.raises(OptionsError, match=r"min_hz must be > 0.*got 0,"):
        BudgetOptions(min_hz=0)
    with pytest.raises(OptionsError, match=r"0 < busy_up < busy_down; got 4 levels, 0\.85, 0\.7, 0\.5"):
        LadderOptions(busy_up=0.7, busy_down=0.5)


def test_budget_new_faces_first_then_overdue_and_changed():
    budget = ClassifyBudget(BudgetOptions(min_hz=5, change=0.01))
    still = np.zeros((3, 12, 12), np.float32)
    ids = np.array([1, 2, 3])
    budget.remember(ids, still, np.zeros((3, 4)), np.zeros((3, 7)), np.zeros((3, 7)), now_ms=1000)
    # 40 ms later nothing is due; a changed face is, once max_hz allows it
    assert not budget.choose(ids, still, 1040, max_hz=30, frame_interval_ms=40).any()
    moved = still.copy()
    moved[1] += 0.02
    assert budget.choose(ids, moved, 1040, max_hz=30, frame_interval_ms=40).tolist() == [False, True, False]
    assert not budget.choose(ids, moved, 1040, max_hz=10, frame_interval_ms=40).any()  # 40 ms < 1/10 s
    # 200 ms later every face is overdue, but the cap (5 Hz x 1.5 for 3 faces at 40 ms) takes one a frame,
    # after a face with no track yet (id 0)
    pick = budget.choose(np.array([0, 1, 2, 3]), np.zeros((4, 12, 12)), 1200, max_hz=30, frame_interval_ms=40)
    assert pick.tolist() == [True, True, False, False]


class Feed:
    """Frames processed at ``fps`` with ``busy_ms`` of work each, for ``seconds``, reported to a ladder whose
    camera delivers 25 fps; the clock carries on from one call to the next."""

    def __init__(self, ladder: QualityLadder) -> None:
        self.ladder, self.t = ladder, 0.0

    def __call__(self, seconds: float, fps: float, busy_ms: float) -> None:
        end = self.t + seconds
        while self.t < end:
            self.t += 1 / fps
            self.ladder.observe(self.t, busy_ms, camera_fps=25)


def test_ladder_steps_down_under_load_and_up_with_headroom():
    ladder = QualityLadder(LadderOptions(down_s=1.0, up_s=2.0, probation_s=10.0))
    run = Feed(ladder)
    run(3, fps=25, busy_ms=10)  # keeping up, busy 25 % of the time: stays at the top
    assert ladder.index == 0
    run(3, fps=10, busy_ms=100)  # a tenth of a second per frame: 10 of 25 frames
    assert ladder.index >= 1
    run(20, fps=10, busy_ms=100)
    assert ladder.index == len(LEVELS) - 1  # the bottom, and it stays there
    down = ladder.steps
    run(4, fps=25, busy_ms=8)  # load gone: back up one level after up_s, then the next
    assert ladder.index == len(LEVELS) - 2 and ladder.steps == down + 1
    run(20, fps=25, busy_ms=8)
    assert ladder.index == 0


def test_ladder_backs_off_from_a_level_that_does_not_hold():
    ladder = QualityLadder(LadderOptions(levels=LEVELS[:2], down_s=1.0, up_s=2.0, probation_s=10.0))
    run = Feed(ladder)
    run(3, fps=10, busy_ms=100)
    assert ladder.index == 1
    run(3.5, fps=25, busy_ms=8)
    assert ladder.index == 0  # tried again after 2 s
    run(3, fps=10, busy_ms=100)  # ... and it did not hold
    assert ladder.index == 1
    run(3.5, fps=25, busy_ms=8)
    assert ladder.index == 1  # the next try waits 4 s, not 2
    run(2, fps=25, busy_ms=8)
    assert ladder.index == 0


def test_ladder_holds_when_frames_are_lost_outside_the_kernel():
    """Half the camera's frames processed, but the kernel idles most of the time: doing less would not help."""
    ladder = QualityLadder(LadderOptions(down_s=1.0))
    Feed(ladder)(16, fps=12, busy_ms=10.0)
    assert ladder.index == 0


def test_ladder_holds_without_a_camera_rate():
    ladder = QualityLadder()
    for i in range(500):
        ladder.observe(i * 0.2, 150.0, camera_fps=0)
    assert ladder.index == 0


def test_timestamped_stream_detects_and_classifies_less(single: np.ndarray):
    """At 25 fps: the detector runs about 5 times a second, each face is classified at least 6 times a
    second, the level is named in every result and the frames could be smaller (a big face)."""
    with Pipeline.create_from_options(warmup=False) as pipe:
        pipe.classifier.warmup(background=False)
        compiled = pipe.classifier.compile_count
        results = [pipe.process_array(f, seq=i, timestamp_ms=1000 + i * 40) for i, f in enumerate(single)]
        detected = sum(r.timings["detect"] > 0 for r in results)
        assert 10 <= detected <= 16  # 60 frames = 2.4 s at 5 detections a second
        ages = np.concatenate([r.ages_ms for r in results])
        assert ages.max() <= 1000 / 6 and (ages == 0).mean() < 0.6
        assert {r.level for r in results} == {"main · TTA on · detect 5/s"}
        assert 0.3 < results[-1].frame_scale < 0.6  # a 266-px face; 112 px are enough
        pipe.ladder.index = len(LEVELS) - 1  # the bottom level: TTA off, compiled at warm-up
        low = [pipe.process_array(f, seq=i, timestamp_ms=4000 + i * 40) for i, f in enumerate(single)]
        assert low[-1].level == "main · TTA off · detect 2/s"
        assert pipe.classifier.compile_count == compiled  # nothing compiles live
        untimed = [pipe.process_array(f) for f in single[:5]]
        assert all(r.timings["detect"] > 0 and (r.ages_ms == 0).all() for r in untimed)


def test_fast_model_level_names_no_tta():
    options = PipelineOptions(classifier=ClassifierOptions(model="fast"))
    with Pipeline.create_from_options(options, warmup=False) as pipe:
        frame = video_frames(CLIPS / "single_face.mp4", every=100)[0]
        assert pipe.process_array(frame, seq=1, timestamp_ms=1000).level == "fast · detect 5/s"


def test_face_keeps_its_id_when_the_camera_sends_smaller_frames(single: np.ndarray):
    """The browser shrinks frames to the faces' need: the face's track (and its smoothing, adapter, name)
    must carry over to the smaller frames."""
    import cv2

    with Pipeline.create_from_options(warmup=False) as pipe:
        big = [pipe.process_array(f, seq=i, timestamp_ms=1000 + i * 40) for i, f in enumerate(single[:10])]
        small = [pipe.process_array(cv2.resize(f, (320, 240), interpolation=cv2.INTER_AREA), i, 2000 + i * 40)
                 for i, f in enumerate(single[10:20])]
        assert {int(r.track_ids[0]) for r in big + small} == {int(big[0].track_ids[0])}
        assert small[0].width == 320 and 0.8 < small[-1].frame_scale < 1.3  # ~110 px face: about right now


def test_ladder_waits_for_the_background_warm_up():
    """Frames processed while the other batch sizes still compile are slow for a reason that passes."""
    options = PipelineOptions(classifier=ClassifierOptions(model="fast", buckets=(1, 3, 5, 6, 7, 9, 10, 11, 13)))
    with Pipeline.create_from_options(options, warmup=True) as pipe:  # a real warm-up: 8 more sizes to compile
        pipe.set_camera_rate(25)
        for _ in range(100):  # far faster than one compile (or even one load from the compilation cache)
            pipe.record_load(200.0)
        assert pipe.classifier.warming_up and pipe.ladder.index == 0
        deadline = time.monotonic() + 120
        while pipe.classifier.warming_up and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pipe.classifier.warming_up
        deadline = time.monotonic() + 10
        while pipe.ladder.index == 0 and time.monotonic() < deadline:
            pipe.record_load(200.0)
            time.sleep(0.05)
        assert pipe.ladder.index == 1


def test_a_result_built_without_ages_has_every_face_fresh(single: np.ndarray):
    import dataclasses

    with Pipeline.create_from_options(warmup=False) as pipe:
        result = dataclasses.replace(pipe.process_array(single[0]), ages_ms=np.zeros(0, np.float32))
    assert result.ages_ms.tolist() == [0.0] * len(result.boxes) == [0.0]
    assert [face["age"] for face in result.to_message()["faces"]] == [0]

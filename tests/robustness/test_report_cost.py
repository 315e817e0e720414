"""The report's cost is bounded (issue 26, defect 7): a long lesson with thousands of short tracks is one page
(the per-student figure and table capped, the rest summed up), and the numpy replay of the attention rule gives
the class view's answers row by row."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import numpy as np
import pytest
from conftest import IMAGES, SHARED
from PIL import Image

from emowidgets.attention import AttentionRule, FaceAttention, flag_series
from emowidgets.classlog import ClassLog, read_log
from emowidgets.pipeline import Pipeline
from emowidgets.tools.report import MAX_FIGURE_STUDENTS, MAX_TABLE_STUDENTS, summarize, write_report


@pytest.fixture(scope="module")
def module_pipeline():
    with Pipeline.create_from_options(warmup=False) as p:
        yield p


def test_a_log_of_100k_rows_and_2000_track_ids_makes_a_one_page_report(tmp_path, module_pipeline: Pipeline):
    found = module_pipeline.process_image((IMAGES / "group_5_people.jpg").read_bytes())
    pick = np.arange(5) % len(found.track_ids)  # five faces a frame, from the faces found in the photo
    result = dataclasses.replace(found, **{k: getattr(found, k)[pick] for k in (
        "boxes", "scores", "probs", "raw_probs", "embeddings", "ages_ms", "face_tiles")})
    faces = len(result.boxes)
    path = tmp_path / "lesson.parquet"
    with ClassLog(path, row_group_rows=50_000) as log:  # 20,000 frames; each face slot a new track every 50
        for f in range(100_000 // faces):
            ids = np.arange(faces) * 400 + f // 50
            log.log(dataclasses.replace(result, track_ids=ids), {int(ids[0]): f"Ana {ids[0]}"},
                    time_ms=1_700_000_000_000 + 500 * f)
    page = write_report(path).read_text(encoding="utf-8")
    sizes = []
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            sizes.append(img.size)
    assert len(sizes) == 2 and all(w < 1200 and h < 3200 for w, h in sizes)
    assert "2000 students (tracked faces)" in page
    assert f"The figure shows the {MAX_FIGURE_STUDENTS} students present longest of 2000." in page
    assert page.count("<tr>") == 1 + MAX_TABLE_STUDENTS + 1  # header, shown, the rest (before: 2,001)
    rest = re.search(r"<tr><td>(\d+) more, each present at most (\d+) s</td><td>(\d+)</td>", page)
    assert rest is not None and rest[1] == str(2000 - MAX_TABLE_STUDENTS) and int(rest[2]) <= 25
    assert int(rest[3]) == pytest.approx((2000 - MAX_TABLE_STUDENTS) * 25, rel=0.01)  # 50 frames of 0.5 s each
    assert "<td>Ana 0</td>" in page


def test_the_report_replays_the_attention_rule_as_the_class_view_would(classifier):
    """On real scores (people.npz faces as one student's lesson, with gaps), the report's numpy replay flags
    exactly the rows a FaceAttention fed row by row flags."""
    with np.load(SHARED / "data" / "people.npz") as data:
        probs = classifier.classify(data["x"][:600].astype(np.float32) / 255).probs.astype(np.float64)
    steps = np.random.default_rng(0).choice([0.0, 0.2, 0.5, 0.5, 1.0, 3.0, 40.0], len(probs))
    times = 1_700_000_000.0 + np.cumsum(steps)
    for rule in (AttentionRule(), AttentionRule(margin=0.05, window_s=6.0, resting_s=10.0)):
        state, expected = FaceAttention(rule), []
        for t, p in zip(times, probs, strict=True):
            state.observe(float(t), p)
            expected.append(state.flagged(float(t)))
        got = flag_series(times, probs, rule)
        np.testing.assert_array_equal(got, expected)
    assert 0 < got.sum() < len(got)  # the second rule flags some rows, not all: the comparison can fail


def test_summarize_merges_tracks_given_the_same_name(tmp_path, module_pipeline: Pipeline):
    ids = np.array([7, 8, 9])  # a photo's faces all have track id 0: give them three
    result = dataclasses.replace(module_pipeline.process_image((IMAGES / "group_5_people.jpg").read_bytes()),
                                 track_ids=ids)
    path = tmp_path / "lesson.csv"
    with ClassLog(path) as log:
        for f in range(10):
            log.log(result, {int(ids[0]): "Ana", int(ids[1]): "Ana" if f >= 5 else "Bo"}, time_ms=1000 * (f + 1))
    summary = {s["student"]: s for s in summarize(read_log(path))}
    assert sorted(summary) == sorted(["Ana", "#9"])  # the last name given counts
    assert summary["Ana"]["rows"] == 20 and summary["Ana"]["present_s"] == pytest.approx(10)

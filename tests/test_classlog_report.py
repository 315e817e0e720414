"""Class log round trip (Parquet and CSV) and the HTML report, from a real pipeline run on multi_face.mp4."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import CLIPS, video_frames

from emowidgets.attention import AttentionRule
from emowidgets.classlog import COLUMNS, ClassLog, read_log
from emowidgets.errors import ClosedError, DataFileError
from emowidgets.pipeline import Pipeline
from emowidgets.tools.cli import main as cli_main
from emowidgets.tools.report import summarize, write_report
from emowidgets.vocab import EMOTIONS, FrameResult

T0 = 1_700_000_000_000  # a fixed Unix time (ms) so the logs are reproducible


@pytest.fixture(scope="module")
def results() -> list[FrameResult]:
    """The real pipeline on every 5th frame of the 2x2 gallery clip (50 frames, 4 faces each)."""
    with Pipeline.create_from_options(warmup=False) as pipeline:
        frames = video_frames(CLIPS / "multi_face.mp4", every=5)
        return [pipeline.process_array(f, seq=i, timestamp_ms=i * 200) for i, f in enumerate(frames)]


def write(results: list[FrameResult], path, names: dict[int, str]) -> None:
    with ClassLog(path, row_group_rows=64) as log:
        for r in results:
            log.log(r, names, time_ms=T0 + r.timestamp_ms)


def woman_id(results: list[FrameResult]) -> int:
    """Track id of the bottom-left tile (the woman who smiles from about 2 s on)."""
    r = results[-1]
    return int(r.track_ids[np.argmin(r.boxes[:, 0] - r.boxes[:, 1])])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"], ids=["parquet", "csv"])
def test_log_round_trip(tmp_path, results: list[FrameResult], suffix: str):
    path = tmp_path / f"class{suffix}"
    write(results, path, {woman_id(results): 'Ana "B", row 2'})
    log = read_log(path)
    assert tuple(log) == COLUMNS
    n = sum(len(r.track_ids) for r in results)
    assert n == 200 and all(len(v) == n for v in log.values())
    np.testing.assert_array_equal(log["track_id"], np.concatenate([r.track_ids for r in results]))
    np.testing.assert_array_equal(log["time_ms"], np.repeat([T0 + r.timestamp_ms for r in results], 4))
    probs, boxes = (np.concatenate([getattr(r, k) for r in results]) for k in ("probs", "boxes"))
    np.testing.assert_allclose(np.stack([log[e] for e in EMOTIONS], 1), probs, rtol=1e-6)
    np.testing.assert_allclose(np.stack([log[c] for c in "xywh"], 1), boxes)
    assert set(log["name"]) == {"", 'Ana "B", row 2'}
    assert not any(c in COLUMNS for c in ("image", "crop", "jpeg"))  # numbers only


def test_log_rejects_other_labels_and_closed_logs(tmp_path, results: list[FrameResult]):
    log = ClassLog(tmp_path / "a.parquet")
    other = FrameResult(**{**results[0].__dict__, "labels": ("bored", "engaged")})
    with pytest.raises(ValueError, match="7 base emotions"):
        log.log(other)
    log.close()
    with pytest.raises(ClosedError, match="closed"):
        log.log(results[0])
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        ClassLog(tmp_path / "a.json")


def test_report_from_a_real_log(tmp_path, results: list[FrameResult]):
    path = tmp_path / "class.parquet"
    write(results, path, {woman_id(results): "Ana"})
    out = write_report(path)
    assert out == tmp_path / "class.html"
    page = out.read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)) == 2
    assert "4 students" in page and "<td>Ana</td>" in page
    summary = {s["student"]: s for s in summarize(read_log(path))}
    assert len(summary) == 4 and summary["Ana"]["dominant"] == "happy"  # she smiles from about 2 s on
    assert all(s["present_s"] == pytest.approx(10, abs=0.3) for s in summary.values())


def test_report_cli_and_errors(tmp_path, results: list[FrameResult], capsys):
    path = tmp_path / "class.csv"
    write(results[:5], path, {})
    assert cli_main(["report", str(path), "--out", str(tmp_path / "r" / "report.html")]) == 0
    assert (tmp_path / "r" / "report.html").is_file() and "report written" in capsys.readouterr().out
    ClassLog(tmp_path / "empty.csv").close()
    with pytest.raises(DataFileError, match="no rows"):
        write_report(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 broken")
    with pytest.raises(DataFileError, match="not a readable class log"):
        write_report(tmp_path / "bad.parquet")


def test_report_needs_attention_replays_the_class_view_rule(tmp_path, results: list[FrameResult]):
    """The report's "needs attention" is the class view's rule on the logged rows: the four people of the 2x2
    clip (talking, listening, smiling; replayed as an 80 s lesson) are never flagged; a rule that flags any
    rise flags each of them for the 50 s after their resting face is learned."""
    path = tmp_path / "class.csv"
    with ClassLog(path) as log:
        for k in range(8 * len(results)):
            log.log(results[k % len(results)], {}, time_ms=T0 + k * 200)
    assert [s["attention_s"] for s in summarize(read_log(path))] == [0.0] * 4
    everything = AttentionRule(margin=-1.0)
    flagged = [s["attention_s"] for s in summarize(read_log(path), everything)]
    assert flagged == [pytest.approx(80 - everything.resting_s, abs=1.0)] * 4
    assert "own resting face" in write_report(path).read_text()

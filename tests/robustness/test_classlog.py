"""The class log never stops the class view (issue 26, defect 2): a full disk is caught and said once, the rows not
on disk are kept (bounded) and can be saved elsewhere, logging goes off and on again, names are stored as text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import IMAGES, ROOT, can_mount_tmpfs

from emowidgets.classlog import ClassLog, read_log
from emowidgets.classview import ClassView
from emowidgets.errors import OptionsError
from emowidgets.pipeline import Pipeline

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs user namespaces to mount a small tmpfs")
@pytest.mark.parametrize(("suffix", "size"), [(".csv", "500k"), (".parquet", "12k")])
def test_a_full_disk_stops_logging_once_and_keeps_the_rows(tmp_path, suffix, size):
    script = (f"mount -t tmpfs -o size={size} tmpfs /mnt && exec {sys.executable} {HERE / 'full_disk.py'} "
              f"{IMAGES / 'group_5_people.jpg'} /mnt {tmp_path} {suffix}")
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["errors"] == 0 and seen["chart_s"] == pytest.approx(600)  # updates never raised, the chart kept moving
    kept = seen["saved"]
    assert seen["notices"] == [f"logging stopped: disk full — {kept} rows kept in memory, save elsewhere (set the "
                               "log path to another folder and switch logging on again, or call "
                               "view.save_log('other/folder/log.parquet'))"]
    assert seen["readable"] == 2049  # the rows written stay readable (before: a Parquet file without its end)
    assert kept == 2049 and seen["names"] == ["Ana"]  # the rest: in memory
    assert seen["again"] == kept + seen["faces"] and seen["logging"] is False  # on and off again appends


def test_a_file_size_limit_keeps_what_was_written_readable_and_closing_keeps_the_rest(tmp_path):
    """RLIMIT_FSIZE in a child process (no mount needed): the Parquet and CSV logs keep their whole row groups
    readable, the rows past the limit stay in memory, and a view closed while its log cannot write keeps them for
    ``save_log`` (before: a Parquet file without its end, and the rows lost at close)."""
    run = subprocess.run([sys.executable, str(HERE / "file_limit.py"), str(IMAGES / "group_5_people.jpg"),
                          str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["faces"] == 3
    for suffix, closing in ((".parquet", -2), (".csv", 0)):  # -2: no file (not even an empty Parquet one fit)
        got = seen[suffix]
        assert got["errors"] == 0 and got["logging"] is False
        assert got["notices"] == ["logging stopped: file too large — 2049 rows kept in memory, save elsewhere (set "
                                  "the log path to another folder and switch logging on again, or call "
                                  "view.save_log('other/folder/log.parquet'))"]
        assert got["readable"] == 2049 and got["kept"] == 2049 and got["names"] == ["Ana"]  # 4,098 rows logged
        assert got["kept_at_close"] == 900 and got["closing"] == closing  # 300 frames of 3 faces, none on disk
        assert got["saved_rows"] == got["saved"] == 900


def test_save_log_refuses_an_existing_file_and_writes_nothing_without_kept_rows(tmp_path):
    view = ClassView()
    (tmp_path / "log.parquet").write_bytes(b"rows already there")
    with pytest.raises(OptionsError, match=r"log\.parquet exists: save the kept rows to a new file"):
        view.save_log(tmp_path / "log.parquet")
    assert view.save_log(tmp_path / "new.parquet") == 0 and not (tmp_path / "new.parquet").exists()
    view.close()


@pytest.fixture(scope="module")
def result():
    with Pipeline.create_from_options(warmup=False) as p:
        return p.process_image((IMAGES / "group_5_people.jpg").read_bytes())


def test_rows_kept_after_a_failure_are_bounded(tmp_path, result):
    path = tmp_path / "log.csv"
    path.symlink_to("/dev/full")  # every write: ENOSPC
    log = ClassLog(path, row_group_rows=10, max_kept_rows=100)
    for k in range(200):
        log.log(result, time_ms=k + 1)
    assert log.failure == "disk full" and log.unsaved_rows == 100 and log.rows_dropped == 3 * 200 - 100
    log.close()  # never raises


def test_names_are_stored_as_text_and_a_number_as_a_name_does_not_break_the_log(tmp_path, result):
    view = ClassView(log_path=str(tmp_path / "log.parquet"), min_frames=1)
    view.names = {0: 12345, "x": "not a track"}  # set from Python: a number key and value, a stray key
    view.logging = True
    view.update(result, now=10.0)
    view.logging = False  # before: ArrowTypeError here and on every update
    view.logging = True
    view.update(result, now=12.0)
    view.close()
    log = read_log(tmp_path / "log.parquet")
    assert list(log["name"]) == ["12345"] * 6 and view.notice == ""  # both sessions' rows, in one readable file


def test_rows_with_scores_that_are_not_numbers_are_dropped_not_written(tmp_path, result):
    import dataclasses

    probs = result.probs.copy()
    probs[1] = np.nan  # what an all-zero adapter gave before its tensors were checked
    with ClassLog(tmp_path / "log.csv") as log:
        log.log(dataclasses.replace(result, probs=probs), time_ms=1)
    assert log.rows_dropped == 1 and len(read_log(tmp_path / "log.csv")["time_ms"]) == 2

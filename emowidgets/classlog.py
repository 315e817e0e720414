"""A numbers-only class log: one row per face per logged frame, never any image.

Columns: ``time_ms`` (Unix time, ms), ``track_id``, ``name`` (empty until a name is given), the
seven scores in :data:`~emowidgets.model.EMOTIONS` order, and the box ``x, y, w, h`` in pixels.
``.parquet`` files are written in row groups (readable once the log is closed, or once it failed: then its file
is rewritten with the row groups that fit); ``.csv`` files are appended row by row and stay readable even if the
kernel dies.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emowidgets.errors import ClosedError, DataFileError, OptionsError
from emowidgets.vocab import EMOTIONS, FrameResult

BOX_COLUMNS = ("x", "y", "w", "h")
COLUMNS = ("time_ms", "track_id", "name", *EMOTIONS, *BOX_COLUMNS)
_SUFFIXES = (".parquet", ".csv")


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("time_ms", pa.int64()), ("track_id", pa.int64()), ("name", pa.string()),
                      *[(c, pa.float32()) for c in (*EMOTIONS, *BOX_COLUMNS)]])


def _check_suffix(path: Path) -> None:
    if path.suffix not in _SUFFIXES:
        raise OptionsError(f"class log must end in .parquet or .csv, not {path.name!r}")


class ClassLog:
    """Appends :class:`~emowidgets.pipeline.FrameResult` numbers to a Parquet or CSV file.

    Thread-safe (the pipeline calls :meth:`log` on its worker thread). Use ``close()`` or ``with``.

    Writing never raises in :meth:`log`, :meth:`flush` or :meth:`close`: when the disk is full (or the file
    becomes unwritable) the log stops writing, says why in :attr:`failure`, and keeps the rows that are not safely
    on disk in memory (:meth:`unsaved`, at most ``max_kept_rows``, the oldest dropped first) so that they can be
    written elsewhere (:meth:`extend` on a new log). What was written stays readable: a CSV file is cut back to
    its last whole row; a Parquet file (readable only with its end, written last) is rewritten at once with the
    row groups it held, its end included, and the groups that no longer fit stay in :meth:`unsaved` (a Parquet log
    keeps its row groups in memory until it is closed, for this).

    Args:
        path: ``.parquet`` or ``.csv`` file; an existing file is replaced, unless ``append``.
        row_group_rows: rows buffered before a Parquet row group (or a CSV flush) is written.
        append: keep the rows of an existing log at ``path`` (logging switched off and on again).
        max_kept_rows: the most rows held in memory (about 60 bytes each) while they are not safely on disk.

    Raises:
        OptionsError: ``path`` does not end in ``.parquet`` or ``.csv``.
        OSError: the file cannot be created (a missing drive, no permission).
        DataFileError: ``append`` and the file at ``path`` is not a readable class log.
    """

    def __init__(self, path: str | Path, row_group_rows: int = 2048, *, append: bool = False,
                 max_kept_rows: int = 500_000) -> None:
        self.path = Path(path)
        _check_suffix(self.path)
        self.row_group_rows = row_group_rows
        self.max_kept_rows = max_kept_rows
        self.rows_written = 0
        self.rows_dropped = 0
        """Rows lost: scores that were not finite numbers, or beyond ``max_kept_rows`` after a failure."""
        self.failure = ""
        """Why the log stopped writing (``"disk full"``, ...); ``""`` while it writes."""
        self._rows: list[tuple[Any, ...]] = []
        self._sealed: list[Any] = []  # Parquet row groups written but unreadable until the footer is
        self._lock = threading.Lock()
        self._writer: Any = None
        self._sink: Any = None  # the Parquet file's handle, closed by the log itself after a failure
        self._csv_file: Any = None
        self._csv_good = 0  # size of the CSV file after its last whole row
        self.closed = False
        earlier = read_log(self.path) if append and self.path.exists() and self.path.suffix == ".parquet" else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".csv":
            again = append and self.path.is_file() and self.path.stat().st_size > 0
            if again:
                read_log(self.path)  # refuse to append to something that is not a class log
            self._csv_file = self.path.open("a" if again else "w", newline="", encoding="utf-8")
            if not again:
                try:
                    csv.writer(self._csv_file).writerow(COLUMNS)
                    self._csv_file.flush()
                except OSError as exc:  # a full disk: the log says so in `failure`, like any later write
                    self._fail(exc)
                    return
            self._csv_good = self._csv_file.tell()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pq.ParquetWriter(self._sink, _schema())
            if earlier is not None and len(earlier["time_ms"]):
                self._rows = list(zip(*(earlier[c].tolist() for c in COLUMNS), strict=True))
                self._flush()

    def log(self, result: FrameResult, names: Mapping[int, object] | None = None, time_ms: int | None = None
            ) -> None:
        """Add one row per face of ``result``; ``names`` maps track ids to names (stored as text), ``time_ms``
        defaults to now. Rows whose scores are not finite numbers are dropped (counted in :attr:`rows_dropped`).

        Raises:
            OptionsError: the result's labels are not the seven base emotions (an adapter is active).
            ClosedError: the log is closed.
        """
        if tuple(result.labels) != EMOTIONS:
            raise OptionsError(f"the class log stores the 7 base emotions, not {result.labels}")
        now = int(time.time() * 1000) if time_ms is None else int(time_ms)
        names = names or {}
        finite = np.isfinite(result.probs).all(axis=1) & np.isfinite(result.boxes).all(axis=1)
        rows = [(now, int(tid), _text(names.get(int(tid), "")), *map(float, probs), *map(float, box))
                for tid, probs, box, ok in zip(result.track_ids, result.probs, result.boxes, finite, strict=True)
                if ok]
        with self._lock:
            if self.closed:
                raise ClosedError(f"class log {self.path} is closed")
            self.rows_dropped += int((~finite).sum())
            self._rows += rows
            if self.failure:
                self._bound()
            elif len(self._rows) >= self.row_group_rows:
                self._flush()

    def extend(self, table: Any) -> None:
        """Add the rows of a table with the log's columns (what another log's :meth:`unsaved` returned)."""
        with self._lock:
            if self.closed:
                raise ClosedError(f"class log {self.path} is closed")
            self._rows += list(zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True))
            self._flush()
            if self.failure:
                self._bound()

    def unsaved(self) -> Any:
        """The rows that are not safely on disk, as a pyarrow table: after a :attr:`failure`, what to save
        elsewhere (still there after :meth:`close`). Before a failure a Parquet log's rows are on disk only once
        it is closed, so they count as unsaved until then."""
        with self._lock:
            return self._unsaved()

    @property
    def unsaved_rows(self) -> int:
        """How many rows :meth:`unsaved` holds."""
        with self._lock:
            return sum(t.num_rows for t in self._sealed) + len(self._rows)

    def _unsaved(self) -> Any:
        import pyarrow as pa

        return pa.concat_tables([*self._sealed, _table(self._rows)])

    def _bound(self) -> None:
        """Drop the oldest rows kept beyond ``max_kept_rows``."""
        extra = sum(t.num_rows for t in self._sealed) + len(self._rows) - self.max_kept_rows
        while extra > 0 and self._sealed:
            extra -= self._sealed[0].num_rows
            self.rows_dropped += self._sealed.pop(0).num_rows
        if extra > 0:
            self.rows_dropped += extra
            del self._rows[:extra]

    def _flush(self) -> None:
        if not self._rows or self.failure:
            return
        try:
            if self._csv_file is not None:
                csv.writer(self._csv_file).writerows(self._rows)
                self._csv_file.flush()
                self._csv_good = self._csv_file.tell()
            else:
                table = _table(self._rows)
                self._writer.write_table(table)
                self._sealed.append(table)
        except Exception as exc:  # OSError from the disk; pyarrow wraps some as its own errors
            self._fail(exc)
            return
        self.rows_written += len(self._rows)
        self._rows = []

    def _fail(self, exc: BaseException) -> None:
        """Stop writing after ``exc``; a CSV file is cut back to its last whole row so that it stays readable."""
        self.failure = _why(exc)
        if self._csv_file is not None:
            with contextlib.suppress(OSError):  # the buffered part of the failed rows: cut off below
                self._csv_file.close()
            with contextlib.suppress(OSError):  # the file is gone or read-only: its rows are kept all the same
                os.truncate(self.path, self._csv_good)
            self._csv_file = None
        if self._writer is not None:
            self._salvage()
        self._bound()

    def _salvage(self) -> None:
        """After a failed write, make the Parquet file readable: rewrite the row groups it held, with the end
        that a Parquet file needs; the newest groups are left out (kept unsaved) until the end fits."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with contextlib.suppress(Exception):  # its end cannot be written: the file is rewritten below
            self._writer.close()
        with contextlib.suppress(Exception):
            self._sink.close()
        self._writer = self._sink = None
        for keep in range(len(self._sealed), -1, -1):
            try:
                with pa.OSFile(str(self.path), "wb") as sink:
                    writer = pq.ParquetWriter(sink, _schema())
                    try:
                        for table in self._sealed[:keep]:
                            writer.write_table(table)
                    finally:
                        writer.close()
            except Exception:  # OSError; pyarrow wraps some as its own errors
                continue
            self.rows_written = sum(t.num_rows for t in self._sealed[:keep])
            self._sealed = self._sealed[keep:]
            return
        with contextlib.suppress(OSError):  # not even an empty table fits: no unreadable file is left behind
            self.path.unlink()
        self.rows_written = 0

    def close(self) -> None:
        """Write what is buffered and close the file (idempotent). A failure is recorded in :attr:`failure`
        (what is not safely written stays in :meth:`unsaved`), never raised."""
        with self._lock:
            if self.closed:
                return
            self._flush()
            try:
                if self._writer is not None:
                    self._writer.close()
                    self._sink.close()
                    self._sealed = []
                if self._csv_file is not None:
                    self._csv_file.close()
            except Exception as exc:
                if not self.failure:
                    self._fail(exc)
            self.closed = True

    def __enter__(self) -> ClassLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(name: object) -> str:
    """A name as stored: always text (a number typed as a name is the text of the number)."""
    return name if isinstance(name, str) else str(name)


def _table(rows: list[tuple[Any, ...]]) -> Any:
    """Rows as a pyarrow table with the log's schema."""
    import pyarrow as pa

    schema = _schema()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                                schema=schema)


def _why(exc: BaseException) -> str:
    """A short reason for a write failure: ``"disk full"`` for ENOSPC, else the OS's words for the error (also
    when pyarrow wrapped it: ``... [errno 27] File too large``)."""
    found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
    code = getattr(exc, "errno", None) or (int(found[1]) if found else None)
    if code == errno.ENOSPC:
        return "disk full"
    if code:
        return os.strerror(code).lower()
    return f"{type(exc).__name__}: {exc}"


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of a class log as numpy arrays (``name`` as an object array of ``str``).

    Raises:
        OptionsError: the path does not end in ``.parquet`` or ``.csv``.
        DataFileError: there is no such file, or it is not a class log (missing columns, an unclosed Parquet
            file), or a row's scores are not finite numbers.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise DataFileError(f"no such class log: {path}")
    try:
        if path.suffix == ".csv":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                column_types=_schema(), strings_can_be_null=False, quoted_strings_can_be_null=False))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DataFileError(f"{path} is not a readable class log ({exc}); was the log closed?") from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataFileError(f"{path} is not a class log: columns {missing} are missing")
    out = {c: table.column(c).to_numpy(zero_copy_only=False) for c in COLUMNS}
    scores = np.stack([out[e] for e in EMOTIONS], axis=1) if len(out["time_ms"]) else np.zeros((0, len(EMOTIONS)))
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1) | (scores < 0).any(axis=1) | (scores > 1).any(axis=1))
    if len(bad):
        raise DataFileError(f"{path}: {len(bad)} row(s) hold scores that are not numbers in [0, 1] (first: data row "
                            f"{bad[0] + 1}); the class view never writes those: fix or remove the row(s)")
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # as text, in arrow: one Python str per distinct name (a million names in Python took seconds)
        names = pc.dictionary_encode(pc.fill_null(table.column("name").cast(pa.string()), "")).combine_chunks()
        out["name"] = names.dictionary.to_numpy(zero_copy_only=False).astype(object)[names.indices.to_numpy()]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataFileError(f"{path} is not a class log: its names are not text ({exc})") from exc
    return out

"""A numbers-only class log: one row per face per logged frame, never any image.

Columns: ``time_ms`` (Unix time, ms), ``track_id``, ``name`` (empty until a name is given), the
seven scores in :data:`~emowidgets.model.EMOTIONS` order, and the box ``x, y, w, h`` in pixels.
``.parquet`` files are written in row groups (readable once the log is closed); ``.csv`` files are
appended row by row and stay readable even if the kernel dies.
"""

from __future__ import annotations

import csv
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

    Args:
        path: ``.parquet`` or ``.csv`` file; an existing file is replaced.
        row_group_rows: rows buffered before a Parquet row group (or a CSV flush) is written.
    """

    def __init__(self, path: str | Path, row_group_rows: int = 2048) -> None:
        self.path = Path(path)
        _check_suffix(self.path)
        self.row_group_rows = row_group_rows
        self.rows_written = 0
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._writer: Any = None
        self._csv_file: Any = None
        self.closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".csv":
            self._csv_file = self.path.open("w", newline="")
            csv.writer(self._csv_file).writerow(COLUMNS)
        else:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.path, _schema())

    def log(self, result: FrameResult, names: Mapping[int, str] | None = None, time_ms: int | None = None
            ) -> None:
        """Add one row per face of ``result``; ``names`` maps track ids to names, ``time_ms`` defaults to now.

        Raises:
            OptionsError: the result's labels are not the seven base emotions (an adapter is active).
            ClosedError: the log is closed.
        """
        if tuple(result.labels) != EMOTIONS:
            raise OptionsError(f"the class log stores the 7 base emotions, not {result.labels}")
        now = int(time.time() * 1000) if time_ms is None else int(time_ms)
        names = names or {}
        rows = [(now, int(tid), names.get(int(tid), ""), *map(float, probs), *map(float, box))
                for tid, probs, box in zip(result.track_ids, result.probs, result.boxes, strict=True)]
        with self._lock:
            if self.closed:
                raise ClosedError(f"class log {self.path} is closed")
            self._rows += rows
            if len(self._rows) >= self.row_group_rows:
                self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._csv_file is not None:
            csv.writer(self._csv_file).writerows(self._rows)
            self._csv_file.flush()
        else:
            import pyarrow as pa

            schema = _schema()
            columns = zip(*self._rows, strict=True)
            self._writer.write_table(pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema))
        self.rows_written += len(self._rows)
        self._rows = []

    def flush(self) -> None:
        """Write the buffered rows now (a Parquet file is complete only after :meth:`close`)."""
        with self._lock:
            self._flush()

    def close(self) -> None:
        """Write what is buffered and close the file (idempotent)."""
        with self._lock:
            if self.closed:
                return
            self._flush()
            if self._writer is not None:
                self._writer.close()
            if self._csv_file is not None:
                self._csv_file.close()
            self.closed = True

    def __enter__(self) -> ClassLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    out["name"] = np.array([str(v) for v in table.column("name").to_pylist()], dtype=object)
    return out

"""After-class report: one self-contained HTML file with matplotlib plots (PNG, embedded) from a class log.

The report shows the class timeline (stacked shares of the seven emotions over time, faces present)
and a per-student summary (time present, dominant emotion, time flagged "needs attention" by the class
view's own rule, :mod:`emowidgets.attention`, replayed over the logged rows, mean score of each emotion).
Students are named by the name given in the class view, or
``#id`` for a track that was never named.

Its cost is bounded by the log's size, not by its number of students: rows are aggregated with numpy (one sort),
the per-student figure draws at most :data:`MAX_FIGURE_STUDENTS` and the table lists at most
:data:`MAX_TABLE_STUDENTS`, summing up the rest in one row (a lesson of 5,000 short tracks stays one page).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from emowidgets.attention import AttentionRule, flag_series
from emowidgets.classlog import read_log
from emowidgets.errors import DataFileError, OptionsError
from emowidgets.vocab import COLORS, EMOTIONS

MAX_TIME_MS = 253_402_300_799_000  # 9999-12-31 23:59:59 UTC, the last time datetime can show


def students_of(track_ids: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The students of a log's rows: their display names (the last name given to a track, else ``#<track id>``;
    tracks given the same name are one student) and, per row, the index of its student. Vectorised: a log may
    hold a million rows."""
    tracks, first_row, track_of_row = np.unique(track_ids, return_index=True, return_inverse=True)
    named = np.flatnonzero(names != "")
    last_named = np.full(len(tracks), -1)
    np.maximum.at(last_named, track_of_row[named], named)
    labels = np.array([f"#{int(t)}" for t in tracks], dtype=object)
    labels[last_named >= 0] = [str(n) for n in names[last_named[last_named >= 0]]]
    keys, student_of_track = np.unique(labels, return_inverse=True)
    first = np.full(len(keys), len(track_ids))
    np.minimum.at(first, student_of_track, first_row)
    order = np.argsort(first, kind="stable")  # students in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return keys[order], rank[student_of_track][track_of_row]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _timeline(t_s: np.ndarray, probs: np.ndarray, times: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    span = max(float(t_s.max()), 1.0)
    n_bins = int(min(120, max(10, span // 5)))
    edges = np.linspace(0, span, n_bins + 1)
    which = np.clip(np.searchsorted(edges, t_s, side="right") - 1, 0, n_bins - 1)
    rows = np.bincount(which, minlength=n_bins)
    shares = np.stack([np.bincount(which, probs[:, k], n_bins) for k in range(probs.shape[1])], axis=1)
    shares = np.where(rows[:, None] > 0, shares / np.maximum(rows, 1)[:, None], np.nan)
    _, at = np.unique(times, return_index=True)
    frames_in = np.bincount(which[at], minlength=n_bins)
    present = np.where(frames_in > 0, rows / np.maximum(frames_in, 1), 0.0)  # mean faces per logged frame
    centres = (edges[:-1] + edges[1:]) / 2
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.stackplot(centres, np.nan_to_num(shares).T, labels=EMOTIONS, colors=COLORS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of the class")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title("Class timeline: mean emotion scores of all faces")
    ax2.step(centres, present, where="mid", color="k")
    ax2.set_ylim(0, max(present.max(), 1) * 1.15)
    ax2.set_ylabel("faces")
    ax2.set_xlabel("time since start (s)")
    return _png(fig)


MAX_FIGURE_STUDENTS = 60
"""Students drawn in the per-student figure (the most present first): it stays a page high however many
track ids a log holds (5,000 drew a 952 x 173,427-px PNG)."""
MAX_TABLE_STUDENTS = 200
"""Students listed one a row in the table (the most present first); the rest are summed up in its last row."""


def _label(name: str) -> str:
    """A name as matplotlib text: ``$`` escaped, so a name is never read as maths (``$x^$`` broke the report)."""
    return name.replace("$", r"\$")


def _students(summary: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    summary = summary[:MAX_FIGURE_STUDENTS]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(summary) + 1.2))
    left = np.zeros(len(summary))
    for k, emotion in enumerate(EMOTIONS):
        values = np.array([s["mean"][k] for s in summary])
        ax.barh([_label(s["student"]) for s in summary], values, left=left, color=COLORS[k], label=emotion)
        left += values
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean score while present")
    ax.set_title("Per student")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return _png(fig)


def summarize(log: dict[str, np.ndarray], rule: AttentionRule | None = None) -> list[dict[str, Any]]:
    """Per student, the most rows first: ``student``, ``rows``, ``present_s``, ``dominant``, ``attention_s``
    (seconds flagged by ``rule``, default :class:`~emowidgets.attention.AttentionRule`), ``mean`` (7,).

    Sorts the rows once and aggregates with numpy; only the attention replay loops, once per student."""
    rule = rule or AttentionRule()
    probs = np.stack([log[e] for e in EMOTIONS], axis=1)  # float32 as logged; sums are taken in float64
    keys, student = students_of(log["track_id"], log["name"])
    times = log["time_ms"]
    unique_times = np.unique(times)
    frame_dt = float(np.median(np.diff(unique_times))) if len(unique_times) > 1 else 0.0
    rows = np.bincount(student, minlength=len(keys))
    sums = np.stack([np.bincount(student, probs[:, k], len(keys)) for k in range(len(EMOTIONS))], axis=1)
    mean = sums / rows[:, None]
    order = np.lexsort((times, student))  # by student, then time; stable
    s_sorted, t_sorted, p_sorted = student[order], times[order], probs[order]
    new_frame = np.ones(len(order), bool)
    new_frame[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
    frames = np.bincount(s_sorted[new_frame], minlength=len(keys))
    starts = np.concatenate([[0], np.cumsum(rows)])
    out = []
    for k, key in enumerate(keys):
        part = slice(starts[k], starts[k + 1])
        flagged = flag_series(t_sorted[part] / 1000, p_sorted[part], rule)
        out.append({"student": str(key), "rows": int(rows[k]), "present_s": int(frames[k]) * frame_dt / 1000,
                    "dominant": EMOTIONS[int(mean[k].argmax())],
                    "attention_s": float(flagged.sum()) * frame_dt / 1000, "mean": mean[k]})
    return sorted(out, key=lambda s: -s["rows"])


def _row(student: str, s: dict[str, Any]) -> str:
    """One table row; ``student`` is HTML already."""
    return (f"<tr><td>{student}</td><td>{s['present_s']:.0f}</td><td>{s['dominant']}</td>"
            f"<td>{s['mean'].max():.2f}</td><td>{s['attention_s']:.0f}</td>"
            + "".join(f"<td>{v:.2f}</td>" for v in s["mean"]) + "</tr>")


def _pooled(students: list[dict[str, Any]]) -> dict[str, Any]:
    """Several students as one: times added up, scores averaged over all their rows."""
    rows = np.array([s["rows"] for s in students], np.float64)
    mean = (np.stack([s["mean"] for s in students]) * rows[:, None]).sum(axis=0) / rows.sum()
    return {"rows": int(rows.sum()), "present_s": sum(s["present_s"] for s in students),
            "attention_s": sum(s["attention_s"] for s in students), "dominant": EMOTIONS[int(mean.argmax())],
            "mean": mean}


def write_report(log_path: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a class log (``.parquet``/``.csv``); return its path.

    Args:
        log_path: the log written by :class:`~emowidgets.classlog.ClassLog`.
        out: the ``.html`` to write; default: next to the log, same name.

    Raises:
        OptionsError: ``out`` is the log itself.
        DataFileError: the log holds no rows, is not a class log, or holds times that are not dates.
        OSError: the report cannot be written.
    """
    log_path = Path(log_path)
    out_path = Path(out) if out is not None else log_path.with_suffix(".html")
    if out_path.resolve() == log_path.resolve():
        raise OptionsError(f"--out {out_path} is the class log itself: writing the report there would destroy it")
    log = read_log(log_path)
    if len(log["time_ms"]) == 0:
        raise DataFileError(f"{log_path} holds no rows: nothing was logged")
    if log["time_ms"].min() < 0 or log["time_ms"].max() > MAX_TIME_MS:
        raise DataFileError(f"{log_path} holds times outside 1970-9999 (time_ms from {log['time_ms'].min()} to "
                            f"{log['time_ms'].max()}): not a class log's Unix times in milliseconds")
    import matplotlib

    matplotlib.use("Agg")
    times = log["time_ms"]
    t_s = (times - times.min()) / 1000
    probs = np.stack([log[e] for e in EMOTIONS], axis=1)  # float32 as logged; sums are taken in float64
    summary = summarize(log)
    start = datetime.datetime.fromtimestamp(times.min() / 1000).strftime("%Y-%m-%d %H:%M:%S")
    shown, rest = summary[:MAX_TABLE_STUDENTS], summary[MAX_TABLE_STUDENTS:]
    rows_html = "\n".join(_row(html.escape(s["student"]), s) for s in shown)
    if rest:
        longest = max(r["present_s"] for r in rest)
        rows_html += "\n" + _row(f"{len(rest)} more, each present at most {longest:.0f} s", _pooled(rest))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {html.escape(log_path.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:14px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}.note{{color:#555;font-size:13px}}</style></head><body>
<h1>Class report</h1>
<p>Log <code>{html.escape(log_path.name)}</code>, started {start}, {t_s.max():.0f} s,
{len(np.unique(times))} logged frames, {len(summary)} students (tracked faces).</p>
<img alt="class timeline" src="{_timeline(t_s, probs, times)}">
<h2>Per student</h2>
<img alt="per-student emotion scores" src="{_students(summary)}">
{f'<p class="note">The figure shows the {MAX_FIGURE_STUDENTS} students present longest of {len(summary)}.</p>'
 if len(summary) > MAX_FIGURE_STUDENTS else ''}
{f'<p class="note">The table lists the {MAX_TABLE_STUDENTS} students present longest of {len(summary)}; its '
 f'last row sums up the other {len(rest)} (their time present and needs attention added up, their scores '
 'averaged over their rows). Many short tracks are often one student lost and found again by the tracker.</p>'
 if rest else ''}
<table><tr><th>student</th><th>present (s)</th><th>dominant</th><th>score</th><th>needs attention (s)</th>
{"".join(f"<th>{e}</th>" for e in EMOTIONS)}</tr>
{rows_html}</table>
<p class="note">Scores are a facial-expression classifier's output (its accuracy is in the model card,
weights/README.md), not feelings: posed and spontaneous expressions differ, lighting and camera angle
matter, and a neutral-looking face can be attentive. Use them as a prompt to look, never as a grade.
"Needs attention (s)": the time the class view's rule held for the student, replayed on the logged
numbers: {html.escape(AttentionRule().describe().removeprefix("needs attention: "))} (their resting face is
learned over their first {AttentionRule().resting_s:.0f} s in view).</p>
</body></html>
"""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path

"""What a teacher sees while a view starts, and whether other views share this computer.

:class:`StartupLine` is a line under the running cell saying what a slow start is doing (loading the model,
compiling it), from the first moment of ``live()``/``classroom()`` until their view appears; it is shown in a
Jupyter kernel only (a script prints nothing) and left empty afterwards. Text only: no pixels.

:class:`Running` marks a view as running on this computer (one empty file per view in a per-user temporary
folder, named by process id), so that a view can say when others share the CPU: three live views at once each
run at a fraction of the frame rate of one.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from emowidgets.pipeline import Pipeline, PipelineOptions

LOADING = "starting: loading the model\N{HORIZONTAL ELLIPSIS}"
COMPILING = f"{LOADING} compiling (first run only, ~10 s)\N{HORIZONTAL ELLIPSIS}"
WAITING = "starting: waiting for the first frames\N{HORIZONTAL ELLIPSIS}"
WARMING = "starting: compiling for more faces (first run only); the first frames are slower\N{HORIZONTAL ELLIPSIS}"


class StartupLine:
    """A status line under the running notebook cell, updated in place (an IPython display with an id)."""

    def __init__(self, text: str = LOADING) -> None:
        self.text = text
        self._handle: Any = None
        if _kernel_shell() is not None:
            from IPython.display import display

            self._handle = display(_bundle(text), raw=True, display_id=True)

    def show(self, text: str) -> None:
        """Replace the line's text."""
        self.text = text
        if self._handle is not None:
            self._handle.update(_bundle(text), raw=True)

    def done(self) -> None:
        """Empty the line (an empty output takes no room on the page): the view it stood for is there now (or
        the start failed, and says why)."""
        self.show("")


def start_pipeline(options: PipelineOptions) -> Pipeline:
    """Load and warm up a pipeline, saying so under the running cell as it goes (a Jupyter kernel only)."""
    line = StartupLine()
    try:
        pipeline = Pipeline.create_from_options(options, warmup=False)
        line.show(COMPILING)
        try:
            pipeline.classifier.warmup()
        except BaseException:
            pipeline.close()
            raise
        return pipeline
    finally:
        line.done()


def _bundle(text: str) -> dict[str, str]:
    if not text:
        return {"text/plain": ""}
    return {"text/plain": text, "text/html": f'<div class="emow-startup">{html.escape(text)}</div>'}


def _kernel_shell() -> Any:
    """The IPython shell of a Jupyter kernel (one that can show outputs while a cell runs), else None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


def running_dir() -> Path:
    """The folder where running views leave their mark (per user, in the temporary folder)."""
    return Path(tempfile.gettempdir()) / f"emowidgets-{os.getuid() if hasattr(os, 'getuid') else 'user'}-views"


_counter = itertools.count()


class Running:
    """This view's mark in :func:`running_dir` while it runs; :meth:`others` counts the other views' marks whose
    process is alive (a kernel killed without closing its views leaves marks that do not count, and are removed)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or running_dir()
        self.path: Path | None = self.folder / f"{os.getpid()}-{next(_counter)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError:  # no temporary folder to write in: no warning, nothing else changes
            self.path = None

    def others(self) -> int:
        """Views running on this computer besides this one."""
        try:
            marks = list(self.folder.iterdir())
        except OSError:
            return 0
        count = 0
        for mark in marks:
            if mark == self.path:
                continue
            if _alive(mark.name.split("-", 1)[0]):
                count += 1
            else:
                with contextlib.suppress(OSError):
                    mark.unlink()
        return count

    def close(self) -> None:
        """Remove the mark (again is a no-op)."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


def others_text(count: int) -> str:
    """The warning for ``count`` other views (``""`` for none)."""
    if not count:
        return ""
    views = "another live view runs" if count == 1 else f"{count} other live views run"
    return (f"{views} on this computer: they share its processor, so each shows fewer frames a second. "
            "Close the ones you do not need (view.close()).")


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    if os.name == "nt":  # os.kill would end the process there: count every mark
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return False
    return True

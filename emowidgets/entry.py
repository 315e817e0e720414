"""What the entry points (``live()``, ``classroom()``) share: one source check, one camera-option check, one
detector knob (:func:`emowidgets.sources.entry_options`), ``with`` support, how marimo shows their views, and the
one-line display of an :class:`~emowidgets.errors.EmowidgetsError` in IPython (the traceback stays one ``%tb`` away).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Self

from emowidgets.errors import EmowidgetsError, OptionsError, VideoFileError


def check_source(source: object, names: tuple[str, ...], *, files: bool = False, default: bool = False
                 ) -> str | Path | Any:
    """The one source check of ``live()`` and ``classroom()``: ``source`` as one of ``names`` (case-insensitive:
    ``"Screen"`` -> ``"screen"``), an ipywebrtc ``MediaStream`` (as is), ``None`` where ``default`` allows it (the
    entry point's default source), or, with ``files``, the path (``str`` or ``Path``) of an existing video file.

    Raises:
        OptionsError: anything else; the message lists every allowed form, the same way for both entry points.
        VideoFileError: with ``files``, a path that does not exist (the message gives the absolute path).
    """
    from ipywebrtc import MediaStream  # here: ``import emowidgets`` stays light

    if isinstance(source, MediaStream) or (source is None and default):
        return source
    if isinstance(source, str) and source.lower() in names:
        return source.lower()
    if files and isinstance(source, str | Path):
        path = Path(source).expanduser()
        if path.suffix or len(path.parts) > 1 or isinstance(source, Path):
            if not path.is_file():
                raise VideoFileError(f"no such video file: {path.resolve()} (a relative path is looked for in the "
                                     f"notebook's folder, {Path.cwd()})")
            return path
    forms = [*(repr(n) for n in names), "an ipywebrtc MediaStream", *(["the path of a video file"] if files else []),
             *(["None"] if default else [])]
    raise OptionsError(f"source must be {', '.join(forms[:-1])} or {forms[-1]}, not {source!r}")


def check_camera_options(options: dict[str, Any], valid: tuple[str, ...], where: str, hint: str = "") -> None:
    """Refuse a camera option the entry point's source does not take, naming those it does (``where`` names the
    call, e.g. ``'live("kernel")'``; ``hint`` adds how to write them)."""
    wrong = sorted(set(options) - set(valid))
    if wrong:
        takes = f"its camera options are {', '.join(valid)}{hint}" if valid else "it takes no camera options"
        raise OptionsError(f"{where} takes no {', '.join(wrong)}; {takes}")


class ClosingContext:
    """``with obj as x: ...`` closes ``obj`` at the end of the block (for objects with ``close()``)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


def marimo_parts(parts: list[Any], *, across: bool) -> Any:
    """What marimo shows for a view made of ``parts``: its anywidget parts side by side (``across``) or stacked.

    marimo renders anywidget widgets but not ipywidgets boxes, so ``LiveView`` and ``Classroom`` hand it their
    parts through marimo's ``_display_`` hook; marimo is imported only there, by marimo itself. Parts that are
    plain ipywidgets (the kernel camera's status line, the calibration panel) are not shown.
    """
    import marimo as mo
    from anywidget import AnyWidget

    shown = [mo.ui.anywidget(part) for part in parts if isinstance(part, AnyWidget)]
    return mo.hstack(shown, justify="start", align="start") if across else mo.vstack(shown)


def _show_error(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
                tb_offset: int | None = None) -> None:
    """IPython's handler for :class:`EmowidgetsError`: one line saying what went wrong and what to do."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # what %tb shows
    print(f"emowidgets: {value}\n(the full traceback: run %tb)", file=sys.stderr)


def register_ipython_errors() -> bool:
    """Show an :class:`EmowidgetsError` raised in a notebook cell as one line (``%tb`` shows the traceback);
    returns whether an IPython shell was there to register with."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    shell.set_custom_exc((EmowidgetsError,), _show_error)
    return True

"""emowidgets: live face-emotion recognition widgets for Jupyter."""

import importlib as _importlib

_LAZY = {"live": "emowidgets.live", "LiveView": "emowidgets.live",
         "CameraWidget": "emowidgets.widgets", "EmotionGauge": "emowidgets.widgets"}


def __getattr__(name: str) -> object:
    """Import the widget API on first use (it loads jax and mediapipe)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'emowidgets' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # importing emowidgets.live set the attribute to the submodule; the function wins
    return value

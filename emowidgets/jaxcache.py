"""JAX's persistent compilation cache, so a new kernel loads the classifier's compiled batch buckets from disk.

Compiling the main model's 1-face bucket takes 0.35-0.4 s on a 2-core machine and every other bucket about as
long; with the cache, a second kernel still traces the function (0.1-0.2 s) but reads the executable back
instead of compiling it (see ``benchmarks/cold_start.py``). The weights are compiled in as constants, so the
cache key changes with the weights: another model file never gets a stale executable.

The cache lives in ``$EMOWIDGETS_CACHE_DIR/jax`` (default ``$XDG_CACHE_HOME/emowidgets/jax``, i.e.
``~/.cache/emowidgets/jax``); ``EMOWIDGETS_CACHE_DIR=off`` turns it off. Delete the folder to clear it (30 MB
for the main model once every bucket has been compiled, 7.5 MB for the fast one; as much again per other
setting). JAX's cache is one per process: once on, the kernel's other JAX code is cached there too, and every
compile, however quick, is kept (emowidgets' thresholds are 0 s and 0 bytes). A cache already configured through
JAX (``jax_compilation_cache_dir`` or ``JAX_COMPILATION_CACHE_DIR``) is left as it is and used. JAX trusts what
it reads from the cache: keep the folder private to your user.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path

import jax

CACHE_DIR_ENV = "EMOWIDGETS_CACHE_DIR"
"""Environment variable: the folder for emowidgets' caches, or ``off``."""

OFF_VALUES = ("off", "0", "false", "no", "none")

_lock = threading.Lock()
_done = False
_active: Path | None = None


def cache_dir() -> Path | None:
    """The folder JAX's cache goes in (``$EMOWIDGETS_CACHE_DIR/jax`` or the default), or None when turned off."""
    raw = os.environ.get(CACHE_DIR_ENV, "").strip()
    if raw.lower() in OFF_VALUES:
        return None
    if raw:
        return Path(raw).expanduser() / "jax"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "emowidgets" / "jax"


def enable() -> Path | None:
    """Turn JAX's persistent compilation cache on for this process, before the classifier's first compile.

    The first call decides; later calls return its answer. Never raises for the cache's sake: a folder that cannot
    be created or written gives one warning and no cache (compiling then works as without it).

    Returns:
        The cache folder in use, or None (turned off, or unusable).
    """
    global _done, _active
    with _lock:
        if _done:
            return _active
        _done = True
        configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
        if configured:  # the user's own JAX setting wins
            _active = Path(configured)
            return _active
        try:
            path = cache_dir()
            if path is None or not jax.config.jax_enable_compilation_cache:  # type: ignore[attr-defined]
                return None
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
                pass
        except (OSError, RuntimeError) as exc:  # RuntimeError: Path.home() without a home directory
            warnings.warn(f"emowidgets: no compilation cache ({exc}); each new kernel compiles the classifier "
                          f"again. Point ${CACHE_DIR_ENV} at a writable folder, or set it to 'off'.",
                          RuntimeWarning, stacklevel=2)
            return None
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        _active = path
        return _active

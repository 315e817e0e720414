"""Child process of ``test_bad_inputs.py``: adapters saved where the disk refuses the bytes.

``limit FOLDER ADAPTER BACKBONE``: under a 1,000-byte file size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored: a write
past it fails with EFBIG), set after the imports. ``mount FOLDER ADAPTER BACKBONE``: ``FOLDER`` is a small tmpfs
of this mount namespace, filled up (ENOSPC), then remounted read-only (EROFS), which stops root too.

Each case saves the adapter over a good copy (``old.safetensors``), to a new file, and with ``save_adapters`` to a
new folder, and records the error (its type, errno, filename, message and the CLI's exit code), the files left in
the folder and whether the good copy still loads unchanged. Prints one JSON object."""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from emowidgets.adapter_io import load_adapter, save_adapter
from emowidgets.classadapters import ClassAdapters
from emowidgets.pipeline import Pipeline
from emowidgets.tools.cli import exit_code


def attempt(write: Any, target: Path) -> dict[str, Any]:
    """What ``write(target)`` raised, as plain values (``raised: None`` when it wrote)."""
    try:
        write(target)
    except OSError as exc:
        return {"raised": type(exc).__name__, "errno": exc.errno, "filename": exc.filename, "message": str(exc),
                "exit": exit_code(exc)}
    return {"raised": None}


def cases(folder: Path, good: bytes, backbone: str, adapters: ClassAdapters) -> dict[str, Any]:
    adapter = adapters.people["Ana"]
    old = folder / "old.safetensors"
    seen = {"over the old file": attempt(lambda p: save_adapter(adapter, p), old),
            "a new file": attempt(lambda p: save_adapter(adapter, p), folder / "new.safetensors"),
            "save_adapters": attempt(adapters.save, folder / "class")}
    seen["old file unchanged"] = old.read_bytes() == good and load_adapter(old, backbone).labels == adapter.labels
    seen["left"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    return seen


def fill(folder: Path) -> None:
    """Write ``folder/filler`` until the disk is full."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def main(mode: str, folder_name: str, adapter_path: str, backbone: str) -> None:
    folder = Path(folder_name)
    good = Path(adapter_path).read_bytes()
    with Pipeline.create_from_options(warmup=False) as p:
        adapters = ClassAdapters(p)
        adapters.set_person("Ana", load_adapter(adapter_path, backbone))
        (folder / "old.safetensors").write_bytes(good)
        seen: dict[str, Any] = {"size": len(good)}
        if mode == "limit":
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
            seen["file size limit"] = cases(folder, good, backbone, adapters)
        else:
            fill(folder)
            seen["full disk"] = cases(folder, good, backbone, adapters)
            (folder / "filler").unlink()
            shutil.rmtree(folder / "class", ignore_errors=True)  # save_adapters may have made it before it failed
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            seen["read-only"] = cases(folder, good, backbone, adapters)
            seen["EROFS"] = errno.EROFS
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:])

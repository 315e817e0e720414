"""Adapter files: safetensors weights plus JSON metadata (labels, backbone id, shots, created time).

Loading checks everything before use: size, container integrity, format and version, the backbone the
adapter was fitted on, tensor shapes and finiteness. Nothing is pickled.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from emowidgets.adapter import Adapter, check_names
from emowidgets.errors import ModelFileError
from emowidgets.modelfile import check_dtypes, write_safetensors
from emowidgets.vocab import EMOTIONS

FORMAT = "emowidgets-adapter"
FORMAT_VERSION = 2
MAX_ADAPTER_BYTES = 1024 * 1024


def save_adapter(adapter: Adapter, path: str | Path) -> None:
    """Write the adapter as safetensors: weights of its label columns, the rest as JSON metadata.

    Raises:
        ModelFileError: the adapter holds what :func:`load_adapter` would refuse (non-finite or all-zero weights,
            a scale that is not positive), so nothing unloadable is written.
        OSError: the file cannot be written (a missing folder, a directory, a read-only or full disk); the file
            is written under a temporary name and renamed, so a failed write leaves no half of it.
    """
    arrays = adapter.arrays
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "labels": json.dumps(adapter.labels),
            "backbone_id": adapter.backbone_id, "shots": json.dumps(adapter.shots),
            "created": adapter.created, "mode": adapter.mode}
    tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}
    _check_values(Path(path), tensors)
    if len(json.dumps(meta)) > MAX_ADAPTER_BYTES // 2:
        raise ModelFileError(f"{path}: the adapter's labels and shots are too long to be loaded back")
    write_safetensors(Path(path), tensors, meta, "adapter file")


def _check_values(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse tensors that would give NaN or all-zero scores: NaN/inf, a scale that is not positive, all-zero
    kernels (tensors not float32 are refused by their stored dtype, :func:`~emowidgets.modelfile.check_dtypes`)."""
    for key, value in arrays.items():
        if not np.isfinite(value).all():
            raise ModelFileError(f"{path}: {key} holds NaN or inf values; recalibrate")
    if not arrays["scale"][0] > 0 or not (np.abs(arrays["kernel"]).any() or np.abs(arrays["mix"]).any()):
        raise ModelFileError(f"{path}: its scale is not positive or its kernels are all zero (every score would be "
                             "the same or NaN); recalibrate")


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Check the container by hand (size, header, data length) before handing it to safetensors."""
    size = path.stat().st_size
    if size > MAX_ADAPTER_BYTES:
        raise ModelFileError(f"{path} is {size} bytes, over the {MAX_ADAPTER_BYTES}-byte adapter limit: "
                             "it is not an adapter file (adapters are a few kB)")
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ModelFileError(f"{path} is not a safetensors adapter file (only {len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise ModelFileError(f"{path} is truncated or not a safetensors file: its header claims {header_len} "
                             f"bytes but the file has {len(raw) - 8}; save the adapter again")
    try:
        header = json.loads(raw[8 : 8 + header_len])
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        dtypes = {k: str(v["dtype"]) for k, v in header.items() if k != "__metadata__"}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
        raise ModelFileError(f"{path} is not a safetensors file (unreadable header): {exc}") from exc
    if 8 + header_len + max(ends, default=0) > len(raw):
        raise ModelFileError(f"{path} is truncated: its tensors need {max(ends, default=0)} bytes, it holds "
                             f"{len(raw) - 8 - header_len}; save the adapter again")
    check_dtypes(path, dtypes, "; recalibrate")
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises several types (and AttributeError for dtypes numpy lacks)
        raise ModelFileError(f"{path} is not a readable safetensors file: {type(exc).__name__}: {exc}") from exc
    return arrays, dict(header.get("__metadata__") or {})


def load_adapter(path: str | Path, expected_backbone_id: str, max_classes: int = 12) -> Adapter:
    """Read an adapter written by :func:`save_adapter` and check it fits the running backbone.

    Raises:
        ModelFileError: missing, oversized, truncated or non-safetensors file; foreign, older or newer
            format; an adapter for another backbone; wrong tensor shapes; NaN or inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"adapter file not found: {path}")
    arrays, meta = _read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not an emowidgets adapter "
                             f"(no format={FORMAT!r})")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ModelFileError(f"{path} has adapter format version {meta.get('format_version')!r}; this "
                             f"emowidgets reads version {FORMAT_VERSION}: recalibrate (the shots are not kept in "
                             "the file) or use the emowidgets version that wrote it")
    if meta.get("backbone_id") != expected_backbone_id:
        raise ModelFileError(f"{path} was fitted on another backbone ({meta.get('backbone_id')!r}) than the "
                             f"running model's ({expected_backbone_id!r}): load it with the model it was "
                             "made for, or recalibrate with this one")
    try:
        labels = tuple(json.loads(meta["labels"]))
        shots = {str(k): int(v) for k, v in json.loads(meta.get("shots", "{}")).items()}
        names = check_names(labels, max_classes)
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise ModelFileError(f"{path} has bad metadata (labels or shots): {exc}") from exc
    c, e = len(names), len(EMOTIONS)
    r, d = arrays["kernel"].shape[:2] if arrays.get("kernel") is not None and arrays["kernel"].ndim == 3 else (-1, -1)
    want = {"mix": (r, e, c), "kernel": (r, d, c), "bias": (r, c), "base_kernel": (d, e), "base_bias": (e,),
            "center": (d,), "scale": (1,), "pull": (r,), "frozen": (r,), "weights": (r,)}
    if set(arrays) != set(want):
        raise ModelFileError(f"{path} holds tensors {sorted(arrays)}, expected {sorted(want)}")
    for key, shape in want.items():
        if arrays[key].shape != shape or d < 1 or r < 1:
            raise ModelFileError(f"{path}: {key} has wrong shape {arrays[key].shape}, expected {shape} "
                                 f"for {c} labels")
    _check_values(path, arrays)
    return Adapter(arrays, names, expected_backbone_id, shots, meta.get("created", ""), meta.get("mode", ""))

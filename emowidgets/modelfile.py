"""Model files and the inference form of the classifier, without Flax.

A weights file is safetensors: the parameters and batch statistics of an :class:`~emowidgets.model.EmotionNet`
under flat ``"backbone/stages/0/0/conv/kernel"``-style names, with the :class:`ModelConfig` and a backbone id in
its metadata. Live inference never needs the trainable nnx module: :func:`load_folded` reads a file straight into
a :class:`FoldedNet` (batch norm folded into the convolutions) with numpy, so a live pipeline does not import
Flax (measured: 0.4-0.5 s of a 2-core machine's cold start). :mod:`emowidgets.model` defines the nnx module for
training and builds it from the same checked arrays (:func:`read_model_file`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save

from emowidgets.errors import ModelFileError
from emowidgets.vocab import CROP_SIZE as CROP_SIZE  # re-exported for infer
from emowidgets.vocab import EMOTIONS

MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
BN_EPSILON = 1e-5
"""The batch norms' epsilon (nnx.BatchNorm's default; :class:`~emowidgets.model.ConvBlock` passes it explicitly)."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of an :class:`~emowidgets.model.EmotionNet`.

    Attributes:
        widths: channels of each stage; every stage is ``convs`` 3x3 conv+BN+ReLU, then a 2x2 max-pool
            (except the last stage, which ends in global average pooling).
        convs: convolutions per stage.
        dropout: dropout rate before the head.
        num_classes: outputs of the head (7 for FER2013).
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs: int = 2
    dropout: float = 0.3
    num_classes: int = len(EMOTIONS)

    @property
    def embed_dim(self) -> int:
        """Size of the embedding ``embed()`` returns."""
        return self.widths[-1]

    def to_json(self) -> str:
        """Canonical JSON form, stored in weight files."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["widths"] = tuple(int(w) for w in raw["widths"])
        config = cls(**raw)
        if not config.widths or min(config.widths) < 1 or config.convs < 1 or config.num_classes < 1:
            raise ValueError(f"widths, convs and num_classes must be positive and widths not empty: {raw}")
        return config

    def array_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every array a weights file of this architecture holds."""
        shapes: dict[str, tuple[int, ...]] = {}
        cin = 1
        for i, width in enumerate(self.widths):
            for j in range(self.convs):
                prefix = f"backbone/stages/{i}/{j}"
                shapes[f"{prefix}/conv/kernel"] = (3, 3, cin, width)
                for stat in ("scale", "bias", "mean", "var"):
                    shapes[f"{prefix}/bn/{stat}"] = (width,)
                cin = width
        shapes["head/kernel"] = (self.embed_dim, self.num_classes)
        shapes["head/bias"] = (self.num_classes,)
        return shapes


def max_pool(x: jax.Array) -> jax.Array:
    """2x2 max-pool with stride 2 of ``(N, H, W, C)``."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def standardize(x: jax.Array) -> jax.Array:
    """Crops ``(N, 48, 48)`` -> ``(N, 48, 48, 1)`` with zero mean and unit variance per image."""
    x = x[..., None]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / (std + 1e-3)


@dataclasses.dataclass(frozen=True)
class FoldedNet:
    """Inference-only form of an :class:`~emowidgets.model.EmotionNet` in eval mode (:func:`load_folded`,
    ``EmotionNet.fold``).

    Each batch norm is folded into its convolution's kernel and a bias, so a layer is one conv plus
    one fused add+ReLU: the same outputs to float rounding, 5-20 % less time on a CPU.
    """

    stages: tuple[tuple[tuple[jax.Array, jax.Array], ...], ...]
    head_kernel: jax.Array
    head_bias: jax.Array
    config: ModelConfig

    def eval(self) -> None:
        """Nothing to do: a folded net is always in eval mode (the counterpart of ``EmotionNet.eval``)."""

    def fold(self) -> FoldedNet:
        """Itself: already folded (the counterpart of ``EmotionNet.fold``)."""
        return self

    def embed(self, x: jax.Array) -> jax.Array:
        """Embedding of face crops ``(N, 48, 48)`` -> ``(N, embed_dim)``, as ``EmotionNet.embed``."""
        x = standardize(x)
        for i, stage in enumerate(self.stages):
            if i:
                x = max_pool(x)
            for kernel, bias in stage:
                x = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                x = jax.nn.relu(x + bias)
        return x.mean(axis=(1, 2))

    def classify(self, emb: jax.Array) -> jax.Array:
        """Logits ``(N, num_classes)`` from embeddings."""
        return emb @ self.head_kernel + self.head_bias


# jax.device_put, not jnp.asarray: in JAX 0.10 the latter compiles a small XLA program per array shape (0.5 s for
# the 18 arrays of a model file on a 2-core machine).
def _fold_layer(kernel: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray,
                epsilon: float) -> tuple[jax.Array, jax.Array]:
    factor = scale / np.sqrt(var + epsilon)
    return jax.device_put(kernel * factor), jax.device_put(bias - mean * factor)


def fold_arrays(config: ModelConfig, arrays: dict[str, np.ndarray]) -> FoldedNet:
    """The :class:`FoldedNet` of a weights file's (checked) arrays, as :func:`read_model_file` returns them."""
    stages = []
    for i in range(len(config.widths)):
        layers = []
        for j in range(config.convs):
            p = f"backbone/stages/{i}/{j}/"
            layers.append(_fold_layer(arrays[p + "conv/kernel"], arrays[p + "bn/scale"], arrays[p + "bn/bias"],
                                      arrays[p + "bn/mean"], arrays[p + "bn/var"], BN_EPSILON))
        stages.append(tuple(layers))
    return FoldedNet(tuple(stages), jax.device_put(arrays["head/kernel"]), jax.device_put(arrays["head/bias"]), config)


def backbone_id(arrays: dict[str, np.ndarray]) -> str:
    """Short hash of the backbone weights: adapters record it to refuse another backbone."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name.startswith("backbone/"):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()[:16]


def metadata_vector(metadata: dict[str, str], key: str, length: int) -> np.ndarray:
    """The vector stored as a JSON list under ``key`` in a model file's metadata (a neutral reference, a prior
    correction), as float32 ``(length,)``.

    Raises:
        ModelFileError: the entry is not a JSON list of ``length`` finite numbers.
    """
    try:
        vector = np.asarray(json.loads(metadata[key]), np.float32)
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise ModelFileError(f"the model file's {key!r} metadata is not a JSON list: {exc}") from exc
    if vector.shape != (length,) or not np.isfinite(vector).all():
        raise ModelFileError(f"the model file's {key!r} must be {length} finite numbers, got shape {vector.shape}")
    return vector


def update_metadata(path: str | Path, **entries: str) -> dict[str, str]:
    """Add or replace metadata ``entries`` of the weights file ``path`` in place (tensors unchanged, so the
    backbone id stays); returns the file's new metadata."""
    with safe_open(str(path), framework="numpy") as f:
        meta = dict(f.metadata() or {})
    arrays = load_file(str(path))
    meta.setdefault("backbone_id", backbone_id(arrays))
    meta.update(entries)
    write_safetensors(Path(path), arrays, meta, "model file")
    return meta


def write_atomically(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder renamed over it, so a failed write
    (a full disk, a file size limit) leaves the old file or none, never half of one; ``what`` names the file's kind.

    Raises:
        OSError: the file cannot be written; the subclass of its errno (``FileNotFoundError`` for a missing
            folder, ``IsADirectoryError``, ``PermissionError``, ...), with ``path`` as its ``filename``.
    """
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.replace(path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None:  # the errno picks the subclass; path, not tmp
            raise OSError(exc.errno, f"cannot write {what}: {exc.strerror}", str(path)) from exc
        if isinstance(exc, OSError):
            raise OSError(f"cannot write {what} {path}: {exc}") from exc
        raise


def write_safetensors(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str], what: str) -> None:
    """Write ``arrays`` and ``metadata`` as a safetensors file with :func:`write_atomically` (safetensors' own
    ``save_file`` raises its ``SafetensorError`` for an OS failure, without the errno)."""
    write_atomically(path, save(arrays, metadata=metadata), what)


def check_dtypes(path: Path, dtypes: dict[str, str], then: str = "") -> None:
    """Refuse tensors not stored as float32, by their safetensors dtype (``F32``), before their bytes are read:
    numpy cannot even hold some (``F8_E4M3``: safetensors raised ``AttributeError``). ``then`` ends the message."""
    for name, dtype in sorted(dtypes.items()):
        if dtype != "F32":
            raise ModelFileError(f"{path}: {name} is stored as {dtype}, expected F32 (float32){then}")


def read_model_file(path: str | Path) -> tuple[ModelConfig, dict[str, np.ndarray], dict[str, str]]:
    """The config, arrays and metadata of a weights file written by :func:`~emowidgets.model.save_model`, checked
    against the config (names, shapes, finite values); the metadata always has a ``backbone_id``.

    Raises:
        ModelFileError: missing, oversized, truncated or foreign file, tensors not float32, wrong shapes,
            non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ModelFileError(f"{path} is {path.stat().st_size} bytes, over the {MAX_WEIGHTS_BYTES} limit")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            dtypes = {name: f.get_slice(name).get_dtype() for name in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises several types
        raise ModelFileError(f"{path} is not a readable safetensors weight file: {type(exc).__name__}: {exc}"
                             ) from exc
    check_dtypes(path, dtypes)
    try:
        arrays = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable safetensors weight file: {type(exc).__name__}: {exc}"
                             ) from exc
    if "config" not in meta:
        raise ModelFileError(f"{path} has no emowidgets model config in its metadata")
    try:
        config = ModelConfig.from_json(meta["config"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
        raise ModelFileError(f"{path} has a broken model config in its metadata ({type(exc).__name__}: {exc}): "
                             "export the weights again") from exc
    expected = config.array_shapes()
    if set(expected) != set(arrays):
        missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        raise ModelFileError(f"{path} does not match its config: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in expected.items():
        if shape != arrays[name].shape:
            raise ModelFileError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
        if not np.isfinite(arrays[name]).all():
            raise ModelFileError(f"{path}: {name} holds NaN or inf values")
    meta.setdefault("backbone_id", backbone_id(arrays))
    return config, arrays, meta


def load_folded(path: str | Path) -> tuple[FoldedNet, dict[str, str]]:
    """The :class:`FoldedNet` and metadata of a weights file, for inference (no Flax involved).

    Raises:
        ModelFileError: as :func:`read_model_file`.
    """
    config, arrays, meta = read_model_file(path)
    return fold_arrays(config, arrays), meta

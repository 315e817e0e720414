"""Emotion classifier: a VGG-style Flax nnx backbone (face crop -> embedding) plus a linear head.

The model owns its input normalisation (per-image standardisation), so every caller feeds the
same thing: aligned grayscale crops ``(N, 48, 48)`` as float32 in ``[0, 1]``.  Weights travel as
safetensors with the config in the file's metadata, so a file always says which backbone it is for.
This module is the trainable definition; the file format and the folded inference form live in
:mod:`emowidgets.modelfile` (no Flax there, so live inference does not import it) and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emowidgets.modelfile import BN_EPSILON, fold_arrays, read_model_file, write_safetensors
from emowidgets.modelfile import MAX_WEIGHTS_BYTES as MAX_WEIGHTS_BYTES
from emowidgets.modelfile import FoldedNet as FoldedNet
from emowidgets.modelfile import ModelConfig as ModelConfig
from emowidgets.modelfile import backbone_id as backbone_id
from emowidgets.modelfile import max_pool as _max_pool
from emowidgets.modelfile import metadata_vector as metadata_vector
from emowidgets.modelfile import standardize as _standardize
from emowidgets.modelfile import update_metadata as update_metadata
from emowidgets.vocab import CROP_SIZE as CROP_SIZE  # re-exported: infer, train, evaluate and fewshot import it here
from emowidgets.vocab import EMOTIONS as EMOTIONS


class ConvBlock(nnx.Module):
    """3x3 convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(cin, cout, kernel_size=(3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(cout, momentum=0.9, epsilon=BN_EPSILON, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x)))


class Backbone(nnx.Module):
    """Face crop ``(N, 48, 48)`` in ``[0, 1]`` -> embedding ``(N, widths[-1])``."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs) -> None:
        blocks: list[list[ConvBlock]] = []
        cin = 1
        for width in config.widths:
            stage = []
            for _ in range(config.convs):
                stage.append(ConvBlock(cin, width, rngs=rngs))
                cin = width
            blocks.append(stage)
        self.stages = nnx.List([nnx.List(stage) for stage in blocks])

    def __call__(self, x: jax.Array) -> jax.Array:
        x = _standardize(x)
        for i, stage in enumerate(self.stages):
            if i:
                x = _max_pool(x)
            for block in stage:
                x = block(x)
        return x.mean(axis=(1, 2))


class EmotionNet(nnx.Module):
    """Backbone + dropout + linear head; ``embed`` and ``classify`` are exposed for the adapter."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.backbone = Backbone(config, rngs=rngs)
        self.dropout = nnx.Dropout(config.dropout)
        self.head = nnx.Linear(config.embed_dim, config.num_classes, rngs=rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """Embedding of face crops ``(N, 48, 48)`` -> ``(N, embed_dim)``."""
        return self.backbone(x)

    def classify(self, emb: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits ``(N, num_classes)`` from embeddings; ``rngs`` drives dropout in train mode."""
        return self.head(self.dropout(emb, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.classify(self.embed(x))

    def fold(self) -> FoldedNet:
        """The :class:`~emowidgets.modelfile.FoldedNet` computing what this net computes in eval mode: its
        arrays folded as a weights file's are (:func:`~emowidgets.modelfile.fold_arrays`)."""
        return fold_arrays(self.config, model_arrays(self))


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[Any, Any]:
    tree: dict[Any, Any] = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(int(part) if part.isdigit() else part, {})
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return tree


def model_arrays(model: EmotionNet) -> dict[str, np.ndarray]:
    """Parameters and batch statistics as a flat ``{"a/b/c": array}`` dict (no RNG state)."""
    state = nnx.state(model, (nnx.Param, nnx.BatchStat))
    return {name: np.asarray(value) for name, value in _flatten(nnx.to_pure_dict(state)).items()}


def save_model(model: EmotionNet, path: str | Path, **metadata: str) -> None:
    """Write weights as safetensors, with the config and ``metadata`` in the header.

    Raises:
        OSError: the file cannot be written (no half of it is left: see
            :func:`~emowidgets.modelfile.write_atomically`).
    """
    arrays = model_arrays(model)
    meta = {"config": model.config.to_json(), "backbone_id": backbone_id(arrays), **metadata}
    write_safetensors(Path(path), arrays, meta, "model file")


def load_model(path: str | Path) -> tuple[EmotionNet, dict[str, str]]:
    """Build an :class:`EmotionNet` from a safetensors file written by :func:`save_model` (for training and
    evaluation; live inference reads the file straight into a :class:`FoldedNet` with
    :func:`emowidgets.modelfile.load_folded`).

    Raises:
        ModelFileError: missing, oversized, truncated or foreign file, wrong shapes, non-finite values.
    """
    config, arrays, meta = read_model_file(path)
    # Build the model abstractly (no random init: that costs seconds of eager XLA ops), then fill it in.
    graph, state = nnx.split(nnx.eval_shape(lambda: EmotionNet(config, rngs=nnx.Rngs(0))))
    nnx.replace_by_pure_dict(state, _unflatten({k: jnp.asarray(v) for k, v in arrays.items()}))
    real = nnx.merge(graph, state)
    real.eval()
    return real, meta

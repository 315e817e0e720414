"""Few-shot calibration, in use: a fitted adapter scores embeddings with numpy alone.

An adapter is the base head plus a small correction, fitted on frozen embeddings in well under a second by
:mod:`emowidgets.adapter_fit` (which holds the fitting, with Flax nnx and optax, and says how it works).
Its logits are a *residual* on the base model (chosen by measurement on people the model never saw,
``docs/calibration.md``)::

    logits = base_logits(e) @ A + z(e) @ W + b,    z(e) = (e - mean of the shots) / their RMS

one set of ``A``, ``W``, ``b`` per candidate pull, the candidates' probabilities averaged with the weights the
held-back shots gave them. :class:`Adapter` holds these arrays as saved (:mod:`emowidgets.adapter_io`) and is a
pipeline ``Head``; :class:`AdapterSet` picks each face's own adapter, else the room's, else the base model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from emowidgets.errors import AdapterError
from emowidgets.vocab import EMOTIONS

ARRAYS = ("mix", "kernel", "bias", "base_kernel", "base_bias", "center", "scale", "pull", "frozen", "weights")
"""An adapter's arrays, as saved: ``mix (R, 7, C)``, ``kernel (R, D, C)``, ``bias (R, C)`` per candidate ``R``
and label ``C``; the base head ``base_kernel (D, 7)``, ``base_bias (7,)``; the shots' ``center (D,)`` and
``scale (1,)``; each candidate's ``pull``, ``frozen`` (1: an infinite pull, the start itself) and ``weights``."""


@dataclasses.dataclass(frozen=True)
class BaseHead:
    """The base model's linear head (``kernel (D, 7)``, ``bias (7,)``) and its backbone's id."""

    kernel: np.ndarray
    bias: np.ndarray
    backbone_id: str

    @classmethod
    def from_classifier(cls, classifier: object) -> BaseHead:
        """Read the head of an :class:`~emowidgets.infer.EmotionClassifier`."""
        kernel, bias = classifier.head  # type: ignore[attr-defined]
        return cls(kernel, bias, classifier.backbone_id)  # type: ignore[attr-defined]


class Adapter:
    """A fitted head: ``labels`` and the arrays that score them (:data:`ARRAYS`), tied to one backbone.

    Also a pipeline ``Head``: ``adapter(embeddings, base_probs, track_ids)`` scores every face.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], labels: Sequence[str], backbone_id: str,
                 shots: Mapping[str, int], created: str, mode: str) -> None:
        self.arrays = {k: np.asarray(arrays[k], np.float32) for k in ARRAYS}
        self.labels = tuple(labels)
        self.backbone_id = backbone_id
        self.shots = dict(shots)
        self.created = created
        self.mode = mode

    @property
    def weights(self) -> dict[float, float]:
        """Weight of each candidate pull (``inf``: the base model) in this adapter's prediction."""
        pulls = np.where(self.arrays["frozen"] > 0, math.inf, self.arrays["pull"])
        return {float(f"{p:.6g}"): float(w) for p, w in zip(pulls, self.arrays["weights"], strict=True)}

    @property
    def embed_dim(self) -> int:
        """Size of the embeddings this adapter takes."""
        return int(self.arrays["kernel"].shape[1])

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, len(labels))`` for embeddings ``(N, D)``; N may be 0."""
        a = self.arrays
        emb = np.asarray(embeddings, np.float32).reshape(-1, self.embed_dim)
        base = emb @ a["base_kernel"] + a["base_bias"]
        z = (emb - a["center"]) / a["scale"][0]
        logits = (np.einsum("be,rem->rbm", base, a["mix"]) + np.einsum("bd,rdm->rbm", z, a["kernel"])
                  + a["bias"][:, None, :])
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return np.einsum("r,rbm->bm", a["weights"], p).astype(np.float32)

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
        return self.predict(embeddings), self.labels


def check_names(names: Sequence[str], max_classes: int) -> tuple[str, ...]:
    """``names`` as a label tuple: 2..``max_classes`` distinct, non-empty strings.

    Raises:
        AdapterError: too few or too many labels, repeats or empty ones.
    """
    names = tuple(names)
    if not 2 <= len(names) <= max_classes:
        raise AdapterError(f"an adapter needs 2 to {max_classes} labels, got {len(names)}: {list(names)}")
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n.strip() for n in names):
        raise AdapterError(f"labels must be distinct non-empty strings, got {list(names)}")
    return names


class AdapterSet:
    """A pipeline ``Head`` choosing, per face, that track's own adapter, else the room adapter, else the
    base model.

    Mixed label sets: every frame reports the union of the labels of all adapters in the set (the room
    adapter's first, or :data:`EMOTIONS` when there is no room adapter, then each person adapter's new
    labels in the order they were added), so the label tuple stays the same from frame to frame. A face's
    probabilities fill only its own adapter's columns; labels it was not calibrated for read 0.
    """

    def __init__(self, room: Adapter | None = None, people: Mapping[int, Adapter] | None = None) -> None:
        self.room = room
        self.people: dict[int, Adapter] = dict(people or {})

    def set_person(self, track_id: int, adapter: Adapter | None) -> None:
        """Give track ``track_id`` its own adapter (None removes it)."""
        if adapter is None:
            self.people.pop(int(track_id), None)
        else:
            self.people[int(track_id)] = adapter

    @property
    def labels(self) -> tuple[str, ...]:
        """The union label set every frame is reported in."""
        out = list(self.room.labels if self.room else EMOTIONS)
        for adapter in self.people.values():
            out += [n for n in adapter.labels if n not in out]
        return tuple(out)

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
        labels = self.labels
        out = np.zeros((len(embeddings), len(labels)), np.float32)
        groups: dict[int, list[int]] = {}
        for i, tid in enumerate(track_ids):
            adapter = self.people.get(int(tid), self.room)
            groups.setdefault(id(adapter), []).append(i)
        for rows in groups.values():
            adapter = self.people.get(int(track_ids[rows[0]]), self.room)
            names, probs = (adapter.labels, adapter.predict(embeddings[rows])) if adapter else (
                EMOTIONS, base_probs[rows])
            out[np.ix_(rows, [labels.index(n) for n in names])] = probs
        return out, labels

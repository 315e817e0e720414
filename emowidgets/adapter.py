"""Few-shot calibration: a small nnx head fitted on frozen backbone embeddings in well under a second.

The backbone never enters the training graph: callers embed their shots once
(:meth:`EmotionClassifier.classify` returns embeddings) and :func:`fit_adapter` trains only the
adapter. Two initialisations, both then fine-tuned with AdamW and pulled back towards their start
(L2-SP), so a handful of shots cannot wreck what was already known:

* **base** (names that are base emotions, when the base head is given): those columns start as the
  base model's own head, so before training the adapter reproduces the base model exactly; new names
  (e.g. ``"confused"``, ``"contempt"``) are imprinted from their shots' mean embedding. Base columns
  are held near their start (``AdapterOptions.base_anchor``).
* **prototype** (any label set): cosine classifier on centred, L2-normalised embeddings whose class
  weights start at the shots' class means, with a learnable scale.

Shots are padded to fixed bucket sizes and classes to ``max_classes`` with masks, and the mode is a
value rather than a Python branch, so ``train_step`` compiles once per bucket whatever the label set
(:func:`compile_count` counts traces). Saving and loading: :mod:`emowidgets.adapter_io`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emowidgets.model import EMOTIONS

PREDICT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
STEPS_PER_CALL = 5
_COMPILES = {"train": 0, "predict": 0}


@dataclasses.dataclass(frozen=True)
class AdapterOptions:
    """How to fit an adapter.

    Attributes:
        max_steps: most AdamW steps per fit (full batch: every step sees all shots), taken
            ``STEPS_PER_CALL`` at a time.
        lr: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        patience: stop after this many steps without the monitored loss improving by ``min_delta``.
        min_delta: smallest loss decrease that counts as an improvement.
        shot_buckets: padded shot counts that are compiled; more shots than the largest is an error.
        max_classes: label-set size the compiled step is padded to (2..max_classes names allowed).
        temperature: initial scale of the cosine logits in prototype mode.
        anchor: L2 pull of imprinted/prototype weights back to their start.
        base_anchor: L2 pull of base-emotion columns back to the base head (base mode).
        init: ``"auto"`` (base mode when a base head is given and a name is a base emotion) or
            ``"prototype"`` (always cosine prototypes).
        holdout: hold back one shot per class (classes with >= 2 shots) to choose the step count and
            report held-back accuracy, then refit on every shot.
        seed: which shots are held back.
    """

    max_steps: int = 150
    lr: float = 0.005
    weight_decay: float = 1e-4
    patience: int = 15
    min_delta: float = 1e-4
    shot_buckets: tuple[int, ...] = (16, 32, 64, 128, 256)
    max_classes: int = 12
    temperature: float = 10.0
    anchor: float = 1e-3
    base_anchor: float = 1.0
    init: Literal["auto", "prototype"] = "auto"
    holdout: bool = True
    seed: int = 0


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


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What a fit did: ``losses`` per step of the final fit, ``heldout_losses`` of the held-back phase,
    ``heldout_accuracy`` on held-back shots (None without hold-out), ``steps`` of the final fit and
    wall ``seconds`` including any compile."""

    losses: list[float]
    heldout_losses: list[float]
    heldout_accuracy: float | None
    heldout_n: int
    steps: int
    seconds: float
    mode: str


class Const(nnx.Variable[jax.Array]):
    """Adapter state that is not trained (masks, anchors, mode): ``wrt=nnx.Param`` skips it."""


class AdapterNet(nnx.Module):
    """Embeddings ``(N, D)`` -> logits ``(N, max_classes)``; columns past the label count are masked."""

    def __init__(self, embed_dim: int, max_classes: int, *, rngs: nnx.Rngs) -> None:
        del rngs  # weights are always set from shots or a file, never drawn
        d, m = embed_dim, max_classes
        self.kernel = nnx.Param(jnp.zeros((d, m), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((m,), jnp.float32))
        self.log_scale = nnx.Param(jnp.zeros((), jnp.float32))
        self.center = Const(jnp.zeros((d,), jnp.float32))
        self.cosine = Const(jnp.zeros((), jnp.float32))
        self.valid = Const(jnp.zeros((m,), jnp.float32))
        self.kernel0 = Const(jnp.zeros((d, m), jnp.float32))
        self.bias0 = Const(jnp.zeros((m,), jnp.float32))
        self.log_scale0 = Const(jnp.zeros((), jnp.float32))
        self.pull = Const(jnp.zeros((m,), jnp.float32))
        self.scale_pull = Const(jnp.zeros((), jnp.float32))

    def __call__(self, emb: jax.Array) -> jax.Array:
        x = emb - self.center[...]
        w = self.kernel[...]
        cos = self.cosine[...]
        x = jnp.where(cos > 0, x * jax.lax.rsqrt((x * x).sum(-1, keepdims=True) + 1e-12), x)
        w = jnp.where(cos > 0, w * jax.lax.rsqrt((w * w).sum(0, keepdims=True) + 1e-12), w)
        logits = jnp.exp(self.log_scale[...]) * (x @ w) + self.bias[...]
        return jnp.where(self.valid[...] > 0, logits, -1e9)

    def penalty(self) -> jax.Array:
        """L2 distance from the starting weights, per column weighted by ``pull``."""
        dk = ((self.kernel[...] - self.kernel0[...]) ** 2).sum(0) + (self.bias[...] - self.bias0[...]) ** 2
        ds = (self.log_scale[...] - self.log_scale0[...]) ** 2
        return (self.pull[...] * dk).sum() + self.scale_pull[...] * ds


def _loss_fn(net: AdapterNet, emb: jax.Array, y: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Weighted cross-entropy (weights sum to 1 over the rows that train) plus the anchor penalty."""
    logits = net(emb)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return (w * ce).sum() + net.penalty(), logits


@nnx.jit
def train_step(net: AdapterNet, optimizer: nnx.Optimizer[AdapterNet], emb: jax.Array, y: jax.Array,
               w_train: jax.Array, w_val: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``STEPS_PER_CALL`` AdamW steps on the ``w_train`` rows (a scan, so Python dispatch is paid once).

    Returns per-step training loss, and held-back loss and accuracy on the ``w_val`` rows measured
    before each step, so one compiled call serves both fitting and early stopping.
    """
    _COMPILES["train"] += 1  # runs only while tracing
    graph, state = nnx.split((net, optimizer))

    def one(state: nnx.State, _: None) -> tuple[nnx.State, tuple[jax.Array, jax.Array, jax.Array]]:
        model, opt = nnx.merge(graph, state)
        (loss, logits), grads = nnx.value_and_grad(_loss_fn, has_aux=True)(model, emb, y, w_train)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        val_loss = (w_val * ce).sum() / jnp.maximum(w_val.sum(), 1e-9)
        val_acc = (w_val * (logits.argmax(-1) == y)).sum() / jnp.maximum(w_val.sum(), 1e-9)
        opt.update(model, grads)
        return nnx.state((model, opt)), (loss, val_loss, val_acc)

    state, metrics = jax.lax.scan(one, state, None, length=STEPS_PER_CALL)
    nnx.update((net, optimizer), state)
    return metrics


@nnx.jit
def predict_step(net: AdapterNet, emb: jax.Array) -> jax.Array:
    """Probabilities ``(B, max_classes)`` for a padded batch of embeddings."""
    _COMPILES["predict"] += 1
    return jax.nn.softmax(net(emb))


def compile_count() -> dict[str, int]:
    """How often ``train_step``/``predict_step`` were traced (constant once every bucket is warm)."""
    return dict(_COMPILES)


_TX = optax.inject_hyperparams(optax.adamw)(learning_rate=0.01, weight_decay=1e-4)
"""One transformation object for every fit (hyperparameters live in its state), so the optimizer's
graph is identical across fits and ``train_step`` is not recompiled."""


class Adapter:
    """A fitted head: ``labels`` and the :class:`AdapterNet` that scores them, tied to one backbone.

    Also a pipeline ``Head``: ``adapter(embeddings, base_probs, track_ids)`` scores every face.
    """

    def __init__(self, net: AdapterNet, labels: Sequence[str], backbone_id: str, shots: Mapping[str, int],
                 created: str, mode: str) -> None:
        self.net = net
        self.labels = tuple(labels)
        self.backbone_id = backbone_id
        self.shots = dict(shots)
        self.created = created
        self.mode = mode

    @property
    def embed_dim(self) -> int:
        """Size of the embeddings this adapter takes."""
        return int(self.net.kernel.shape[0])

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, len(labels))`` for embeddings ``(N, D)``; N may be 0."""
        n, c = len(embeddings), len(self.labels)
        out = np.zeros((n, c), np.float32)
        largest = PREDICT_BUCKETS[-1]
        for start in range(0, n, largest):
            chunk = embeddings[start : start + largest]
            size = next(b for b in PREDICT_BUCKETS if b >= len(chunk))
            padded = np.zeros((size, self.embed_dim), np.float32)
            padded[: len(chunk)] = chunk
            probs = np.asarray(predict_step(self.net, jnp.asarray(padded)))
            out[start : start + len(chunk)] = probs[: len(chunk), :c]
        return out

    def __call__(self, embeddings: np.ndarray, base_probs: np.ndarray, track_ids: np.ndarray
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
        return self.predict(embeddings), self.labels


def _check_names(names: Sequence[str], max_classes: int) -> tuple[str, ...]:
    names = tuple(names)
    if not 2 <= len(names) <= max_classes:
        raise ValueError(f"an adapter needs 2 to {max_classes} labels, got {len(names)}: {list(names)}")
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"labels must be distinct non-empty strings, got {list(names)}")
    return names


def _init_net(net: AdapterNet, emb: np.ndarray, y: np.ndarray, names: tuple[str, ...],
              options: AdapterOptions, base: BaseHead | None) -> str:
    """Set the starting weights from shots (and the base head); return the mode used."""
    d, m = emb.shape[1], options.max_classes
    use_base = options.init == "auto" and base is not None and any(n in EMOTIONS for n in names)
    kernel, bias, pull = np.zeros((d, m), np.float32), np.zeros(m, np.float32), np.zeros(m, np.float32)
    means = np.stack([emb[y == k].mean(0) for k in range(len(names))])
    if use_base:
        assert base is not None
        center, log_scale = np.zeros(d, np.float32), 0.0
        base_logits = emb @ base.kernel + base.bias
        norm = float(np.median(np.linalg.norm(base.kernel, axis=0)))
        for k, name in enumerate(names):
            if name in EMOTIONS:
                j = EMOTIONS.index(name)
                kernel[:, k], bias[k], pull[k] = base.kernel[:, j], base.bias[j], options.base_anchor
            else:  # imprint: from the other shots towards this class, level with the best base logit
                direction = means[k] - np.delete(means, k, axis=0).mean(0)
                direction /= np.linalg.norm(direction) + 1e-6
                kernel[:, k] = direction * norm
                bias[k] = float(np.mean(base_logits[y == k].max(1) - emb[y == k] @ kernel[:, k]))
                pull[k] = options.anchor
    else:
        center = means.mean(0)
        x = emb - center
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-6
        for k in range(len(names)):
            kernel[:, k] = x[y == k].mean(0)
        pull[: len(names)] = options.anchor
        log_scale = float(np.log(options.temperature))
    valid = (np.arange(m) < len(names)).astype(np.float32)
    values = {"kernel": kernel, "bias": bias, "log_scale": np.float32(log_scale), "center": center,
              "cosine": np.float32(0.0 if use_base else 1.0), "valid": valid, "kernel0": kernel,
              "bias0": bias, "log_scale0": np.float32(log_scale), "pull": pull,
              "scale_pull": np.float32(options.anchor)}
    for key, value in values.items():
        getattr(net, key)[...] = jnp.asarray(value, jnp.float32)
    return "base" if use_base else "prototype"


def _run(net: AdapterNet, emb: np.ndarray, y: np.ndarray, w_train: np.ndarray, w_val: np.ndarray, steps: int,
         options: AdapterOptions, on_step: Callable[[int, float], None] | None, stop_on_val: bool
         ) -> tuple[list[float], list[float], list[float]]:
    """Train up to ``steps`` steps with early stopping; return per-step losses, val losses, val accuracies."""
    optimizer = nnx.Optimizer(net, _TX, wrt=nnx.Param)
    optimizer.opt_state.hyperparams["learning_rate"][...] = options.lr
    optimizer.opt_state.hyperparams["weight_decay"][...] = options.weight_decay
    bucket = next((b for b in options.shot_buckets if b >= len(y)), None)
    if bucket is None:
        raise ValueError(f"{len(y)} shots exceed the largest shot bucket {options.shot_buckets[-1]}: "
                         "use fewer shots or add a bigger bucket to AdapterOptions.shot_buckets")
    pad = bucket - len(y)
    args = [jnp.asarray(np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))) for a in (emb, y, w_train, w_val)]
    step = nnx.cached_partial(train_step, net, optimizer)
    losses: list[float] = []
    val_losses: list[float] = []
    val_accs: list[float] = []
    best, since = np.inf, 0
    while len(losses) < steps and since < options.patience:
        for loss, val_loss, val_acc in np.asarray(jnp.stack(step(*args), axis=1)).tolist():
            if on_step is not None:
                on_step(len(losses), loss)
            losses.append(loss)
            val_losses.append(val_loss)
            val_accs.append(val_acc)
            watched = val_loss if stop_on_val else loss
            best, since = (watched, 0) if watched < best - options.min_delta else (best, since + 1)
    return losses, val_losses, val_accs


def fit_adapter(embeddings: np.ndarray, labels: np.ndarray, names: Sequence[str],
                options: AdapterOptions | None = None, *, base: BaseHead | None = None, backbone_id: str = "",
                on_step: Callable[[int, float], None] | None = None) -> tuple[Adapter, FitReport]:
    """Fit an adapter on shot embeddings ``(N, D)`` with integer ``labels`` ``(N,)`` indexing ``names``.

    Args:
        embeddings: backbone embeddings of the shots.
        labels: class index of each shot; every name needs at least one shot.
        names: 2..``max_classes`` distinct labels, base emotions and/or new ones.
        options: fitting settings.
        base: the base head, for base-mode initialisation (see the module docstring); also sets the
            backbone id.
        backbone_id: id of the backbone the embeddings came from, when ``base`` is not given.
        on_step: called as ``on_step(step, loss)`` after every step of the final fit (live loss curve).

    Returns:
        The adapter and a :class:`FitReport`.

    Raises:
        ValueError: bad label set, a name without shots, mismatched shapes or too many shots.
    """
    options = options or AdapterOptions()
    t0 = time.perf_counter()
    names = _check_names(names, options.max_classes)
    emb = np.asarray(embeddings, np.float32)
    y = np.asarray(labels).astype(np.int32)
    if emb.ndim != 2 or y.shape != (len(emb),):
        raise ValueError(f"need embeddings (N, D) and labels (N,), got {emb.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise ValueError(f"labels must index names (0..{len(names) - 1})")
    counts = np.bincount(y, minlength=len(names))
    if (counts == 0).any():
        missing = [n for n, c in zip(names, counts, strict=True) if c == 0]
        raise ValueError(f"no shots for {missing}: capture at least one per label (five is better)")
    if base is not None and base.kernel.shape[0] != emb.shape[1]:
        raise ValueError(f"base head takes {base.kernel.shape[0]}-d embeddings, shots are {emb.shape[1]}-d")
    balanced = (1.0 / counts[y] / len(names)).astype(np.float32)
    net = AdapterNet(emb.shape[1], options.max_classes, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(options.seed)
    held = np.zeros(len(y), bool)
    if options.holdout:
        for k in np.flatnonzero(counts >= 2):
            held[rng.choice(np.flatnonzero(y == k))] = True
    steps, heldout_acc = options.max_steps, None
    heldout_losses: list[float] = []
    if held.any():
        keep = ~held
        w_train = np.where(keep, 1.0 / np.bincount(y[keep], minlength=len(names))[y].clip(1), 0.0)
        w_train = (w_train / w_train.sum()).astype(np.float32)
        _init_net(net, emb[keep], y[keep], names, options, base)
        _, heldout_losses, accs = _run(net, emb, y, w_train, held.astype(np.float32), options.max_steps,
                                       options, None, stop_on_val=True)
        best = int(np.argmin(heldout_losses))
        steps, heldout_acc = max(best, 1), accs[best]  # val metrics are taken before each step
    mode = _init_net(net, emb, y, names, options, base)
    losses, _, _ = _run(net, emb, y, balanced, np.zeros(len(y), np.float32), steps, options, on_step,
                        stop_on_val=False)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    shots = {n: int(c) for n, c in zip(names, counts, strict=True)}
    adapter = Adapter(net, names, base.backbone_id if base else backbone_id, shots, created, mode)
    report = FitReport(losses, heldout_losses, heldout_acc, int(held.sum()), len(losses),
                       time.perf_counter() - t0, mode)
    return adapter, report


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

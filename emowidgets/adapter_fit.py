"""Few-shot calibration, the fit: the base head plus a small correction, fitted on frozen embeddings in well under
a second (Flax nnx and optax; the fitted :class:`~emowidgets.adapter.Adapter` is used with numpy alone).

The backbone never enters the training graph: callers embed their shots once
(:meth:`EmotionClassifier.classify` returns embeddings) and :func:`fit_adapter` trains only the
adapter. Its logits are a *residual* on the base model (chosen by measurement on people the model
never saw, ``docs/calibration.md``)::

    logits = base_logits(e) @ A + z(e) @ W + b,    z(e) = (e - mean of the shots) / their RMS

``A`` starts as the identity on the adapter's base-emotion names (so before training the adapter is the base
model), ``W`` at zero, ``b`` at zero; a name the base model does not know (``"confused"``) starts imprinted
from its shots (direction from the other shots' mean to its own). Adam (``optax.adamw`` with weight decay 0:
the pull is the only regulariser) then fits all three, with ``A`` and ``W`` pulled back to their start with
strength *pull*: a strong pull trusts the base model and mostly learns a per-person bias (how much this face
shows each emotion at rest), a weak one trusts the shots. **How far to trust the shots is decided by the
shots**: every fit trains one candidate per pull in ``AdapterOptions.pulls`` and per cross-validation fold
(shots of one capture group held out together) side by side, as a leading axis of the parameters. The adapter
averages the full-data candidates' probabilities, each weighted by the likelihood its fold candidates gave the
held-back shots (predictions softened by ``cv_temperature``; uniform weights when nothing can be held back,
e.g. one shot per class). An infinite pull is the start itself (the base model, for base names): it dominates
when no correction helps on held-back captures, e.g. shots of strangers.

Shots are padded to fixed bucket sizes and classes to ``max_classes`` with masks, so ``train_step``
compiles once per bucket whatever the label set (:func:`compile_count` counts traces). Saving and
loading: :mod:`emowidgets.adapter_io`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emowidgets.adapter import Adapter, BaseHead, check_names
from emowidgets.errors import AdapterError
from emowidgets.vocab import EMOTIONS

STEPS_PER_CALL = 25
IMPRINT_SPREAD = 3.0
"""Spread (std over its shots, in logits) an imprinted new class starts with: comparable to base logits."""
_COMPILES = {"train": 0, "eval": 0}


@dataclasses.dataclass(frozen=True)
class AdapterOptions:
    """How to fit an adapter.

    Attributes:
        max_steps: Adam steps per fit (full batch, every candidate at once), ``STEPS_PER_CALL`` per call.
        lr: Adam learning rate.
        pulls: candidate strengths of the pull back to the base head; the held-back shots weigh them.
            ``inf``: no training, the start (the base model for base names).
        folds: most cross-validation folds (fewer when there are fewer capture groups).
        cv_temperature: the held-back shots judge each candidate by the likelihood of its predictions softened
            by this temperature, so one confident mistake does not outweigh several right calls (2 matched
            logistic regression on people.npz split at random and cost under a point with other takes).
        bias_pull: the (weak) pull of the per-class bias towards 0.
        shot_buckets: padded shot counts that are compiled; more shots than the largest is an error.
        max_classes: label-set size the compiled step is padded to (2..max_classes names allowed).
        seed: which groups fall in which fold.
    """

    max_steps: int = 100
    lr: float = 0.05
    pulls: tuple[float, ...] = (0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0, math.inf)
    folds: int = 6
    cv_temperature: float = 2.0
    bias_pull: float = 1e-3
    shot_buckets: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 128, 256)
    max_classes: int = 12
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What a fit did.

    Attributes:
        losses: mean training loss of the candidates per step (the live loss curve).
        weights: the weight of each pull in the adapter (``{pull: weight}``; large pulls: the base model,
            small: the shots).
        cv_losses: mean held-back loss per pull, softened by ``cv_temperature`` (``{pull: loss}``; empty
            without cross-validation).
        heldout_accuracy: weighted accuracy on held-back shots (None without cross-validation).
        heldout_n: shots scored held-back (each once; a shot whose class has no other capture cannot be).
        steps: steps of the fit.
        seconds: wall time including any compile.
        mode: ``"residual"`` (on the base head) or ``"imprint"`` (no base head given).
    """

    losses: list[float]
    weights: dict[float, float]
    cv_losses: dict[float, float]
    heldout_accuracy: float | None
    heldout_n: int
    steps: int
    seconds: float
    mode: str


class Const(nnx.Variable[jax.Array]):
    """Adapter state that is not trained (base head, standardisation, start, masks): ``wrt=nnx.Param`` skips it."""


class AdapterNet(nnx.Module):
    """Embeddings ``(N, D)`` -> logits ``(R, N, max_classes)`` for ``R`` candidate heads fitted side by side.

    A fitted adapter keeps one candidate per pull and predicts their probabilities' mean weighted by
    ``weights``. Columns past the label count are masked.
    """

    def __init__(self, embed_dim: int, max_classes: int, candidates: int = 1, *, rngs: nnx.Rngs) -> None:
        del rngs  # weights are always set from shots or a file, never drawn
        d, m, r, e = embed_dim, max_classes, candidates, len(EMOTIONS)
        self.mix = nnx.Param(jnp.zeros((r, e, m), jnp.float32))
        self.kernel = nnx.Param(jnp.zeros((r, d, m), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((r, m), jnp.float32))
        self.base_kernel = Const(jnp.zeros((d, e), jnp.float32))
        self.base_bias = Const(jnp.zeros((e,), jnp.float32))
        self.center = Const(jnp.zeros((d,), jnp.float32))
        self.scale = Const(jnp.ones((), jnp.float32))
        self.valid = Const(jnp.zeros((m,), jnp.float32))
        self.mix0 = Const(jnp.zeros((e, m), jnp.float32))
        self.kernel0 = Const(jnp.zeros((d, m), jnp.float32))
        self.pull = Const(jnp.zeros((r,), jnp.float32))
        self.frozen = Const(jnp.zeros((r,), jnp.float32))
        self.weights = Const(jnp.full((r,), 1.0 / r, jnp.float32))
        self.bias_pull = Const(jnp.zeros((), jnp.float32))

    def __call__(self, emb: jax.Array) -> jax.Array:
        base = emb @ self.base_kernel[...] + self.base_bias[...]
        z = (emb - self.center[...]) / self.scale[...]
        logits = (jnp.einsum("be,rem->rbm", base, self.mix[...]) + jnp.einsum("bd,rdm->rbm", z, self.kernel[...])
                  + self.bias[...][:, None, :])
        return jnp.where(self.valid[...] > 0, logits, -1e9)

    def penalty(self) -> jax.Array:
        """Per candidate: ``pull`` x squared distance of ``mix`` and ``kernel`` from their start, + weak bias pull."""
        dist = (((self.mix[...] - self.mix0[...]) ** 2).sum((1, 2))
                + ((self.kernel[...] - self.kernel0[...]) ** 2).sum((1, 2)))
        return self.pull[...] * dist + self.bias_pull[...] * (self.bias[...] ** 2).sum(1)


def _loss_fn(net: AdapterNet, emb: jax.Array, y: jax.Array, w: jax.Array, present: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
    """Sum over candidates of weighted cross-entropy (``w (R, B)``, rows sum to 1) plus the pull.

    Each candidate's softmax runs over the classes it has training shots of (``present (R, M)``): a
    class whose only shot is held back keeps its start instead of being pushed down for lack of
    shots. Frozen candidates add nothing. The aux output is each candidate's own loss."""
    logits = jnp.where(present[:, None, :] > 0, net(emb), -1e9)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y[None, :])
    per = (w * ce).sum(1) + net.penalty()
    return (per * (1 - net.frozen[...])).sum(), per


@nnx.jit
def train_step(net: AdapterNet, optimizer: nnx.Optimizer[AdapterNet], emb: jax.Array, y: jax.Array,
               w: jax.Array, present: jax.Array) -> jax.Array:
    """``STEPS_PER_CALL`` Adam steps (a scan, so Python dispatch is paid once); per-step, per-candidate losses."""
    _COMPILES["train"] += 1  # runs only while tracing
    graph, state = nnx.split((net, optimizer))

    def one(state: nnx.State, _: None) -> tuple[nnx.State, jax.Array]:
        model, opt = nnx.merge(graph, state)
        (_, per), grads = nnx.value_and_grad(_loss_fn, has_aux=True)(model, emb, y, w, present)
        opt.update(model, grads)
        return nnx.state((model, opt)), per

    state, losses = jax.lax.scan(one, state, None, length=STEPS_PER_CALL)
    nnx.update((net, optimizer), state)
    return losses


@nnx.jit
def eval_step(net: AdapterNet, emb: jax.Array, y: jax.Array, temperature: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per candidate and shot: cross-entropy of the predictions softened by ``temperature``, and whether the
    shot is predicted right ``(R, B)``."""
    _COMPILES["eval"] += 1
    logits = net(emb)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits / temperature, y[None, :])
    return ce, logits.argmax(-1) == y[None, :]


def compile_count() -> dict[str, int]:
    """How often ``train_step``/``eval_step`` were traced (constant once every bucket is warm)."""
    return dict(_COMPILES)


_TX = optax.inject_hyperparams(optax.adamw)(learning_rate=0.05, weight_decay=0.0)
"""One transformation object for every fit (hyperparameters live in its state), so the optimizer's
graph is identical across fits and ``train_step`` is not recompiled."""


def _start(emb: np.ndarray, y: np.ndarray, names: tuple[str, ...], base: BaseHead | None, max_classes: int
           ) -> dict[str, np.ndarray]:
    """The constants and starting weights for these shots: standardisation, base head, identity on the base
    names, imprinted directions (and levels) for the others."""
    d, m, e = emb.shape[1], max_classes, len(EMOTIONS)
    means = np.stack([emb[y == k].mean(0) for k in range(len(names))])
    center = means.mean(0)
    scale = np.float32(np.sqrt(((emb - center) ** 2).mean()) + 1e-6)
    z = (emb - center) / scale
    base_kernel = base.kernel if base is not None else np.zeros((d, e), np.float32)
    base_bias = base.bias if base is not None else np.zeros(e, np.float32)
    base_logits = emb @ base_kernel + base_bias
    mix0, kernel0, bias0 = np.zeros((e, m), np.float32), np.zeros((d, m), np.float32), np.zeros(m, np.float32)
    zm = (means - center) / scale
    for k, name in enumerate(names):
        if base is not None and name in EMOTIONS:
            mix0[EMOTIONS.index(name), k] = 1.0
            continue
        direction = zm[k] - np.delete(zm, k, axis=0).mean(0)
        direction /= np.linalg.norm(direction) + 1e-6
        spread = float(np.std(z @ direction)) + 1e-3
        kernel0[:, k] = direction * IMPRINT_SPREAD / spread
        # level with the best base logit on its own shots, so the new class competes from the start
        bias0[k] = float(np.mean(base_logits[y == k].max(1) - z[y == k] @ kernel0[:, k]))
    return {"base_kernel": base_kernel, "base_bias": base_bias, "center": center, "scale": scale,
            "valid": (np.arange(m) < len(names)).astype(np.float32), "mix0": mix0, "kernel0": kernel0,
            "bias0": bias0}


def _set(net: AdapterNet, start: Mapping[str, np.ndarray], pulls: np.ndarray, bias_pull: float) -> None:
    """Put the constants in ``net`` and every candidate at the start."""
    r = len(pulls)
    for key in ("base_kernel", "base_bias", "center", "scale", "valid", "mix0", "kernel0"):
        getattr(net, key)[...] = jnp.asarray(start[key], jnp.float32)
    net.mix[...] = jnp.asarray(np.broadcast_to(start["mix0"], (r, *start["mix0"].shape)), jnp.float32)
    net.kernel[...] = jnp.asarray(np.broadcast_to(start["kernel0"], (r, *start["kernel0"].shape)), jnp.float32)
    net.bias[...] = jnp.asarray(np.broadcast_to(start["bias0"], (r, len(start["bias0"]))), jnp.float32)
    net.pull[...] = jnp.asarray(np.where(np.isinf(pulls), 0.0, pulls), jnp.float32)
    net.frozen[...] = jnp.asarray(np.isinf(pulls), jnp.float32)
    net.bias_pull[...] = jnp.asarray(bias_pull, jnp.float32)


def _folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each shot (-1: never held back); shots of one group share a fold."""
    uniq, inv = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        return np.full(len(groups), -1)
    order = np.random.default_rng(seed).permutation(len(uniq))
    return (order % min(n_folds, len(uniq)))[inv]


def fit_adapter(embeddings: np.ndarray, labels: np.ndarray, names: Sequence[str],
                options: AdapterOptions | None = None, *, base: BaseHead | None = None, backbone_id: str = "",
                groups: np.ndarray | None = None, on_step: Callable[[int, float], None] | None = None,
                ) -> tuple[Adapter, FitReport]:
    """Fit an adapter on shot embeddings ``(N, D)`` with integer ``labels`` ``(N,)`` indexing ``names``.

    Args:
        embeddings: backbone embeddings of the shots.
        labels: class index of each shot; every name needs at least one shot.
        names: 2..``max_classes`` distinct labels, base emotions and/or new ones.
        options: fitting settings.
        base: the base head the adapter is a residual on (see the module docstring); also sets the
            backbone id. Without it every name is imprinted from its shots.
        backbone_id: id of the backbone the embeddings came from, when ``base`` is not given.
        groups: capture group of each shot (e.g. one id per 1-s burst): near-duplicates are held back
            together when choosing the pull. Default: every shot its own group.
        on_step: called after every ``STEPS_PER_CALL`` steps as ``on_step(step, loss)``: the index of the last
            step done and its loss, the mean over the candidates fitted on all the shots.

    Returns:
        The adapter and a :class:`FitReport`.

    Raises:
        AdapterError: bad label set, a name without shots, mismatched shapes or too many shots.
    """
    options = options or AdapterOptions()
    t0 = time.perf_counter()
    names = check_names(names, options.max_classes)
    emb = np.asarray(embeddings, np.float32)
    y = np.asarray(labels).astype(np.int32)
    if emb.ndim != 2 or y.shape != (len(emb),):
        raise AdapterError(f"need embeddings (N, D) and labels (N,), got {emb.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise AdapterError(f"labels must index names (0..{len(names) - 1})")
    counts = np.bincount(y, minlength=len(names))
    if (counts == 0).any():
        missing = [n for n, c in zip(names, counts, strict=True) if c == 0]
        raise AdapterError(f"no shots for {missing}: capture at least one per label (five is better)")
    if base is not None and base.kernel.shape[0] != emb.shape[1]:
        raise AdapterError(f"base head takes {base.kernel.shape[0]}-d embeddings, shots are {emb.shape[1]}-d")
    if not options.pulls or min(options.pulls) <= 0:
        raise AdapterError(f"AdapterOptions.pulls must be positive, got {options.pulls}")
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if groups.shape != y.shape:
        raise AdapterError(f"need one group per shot ({len(y)}), got shape {groups.shape}")
    bucket = next((b for b in options.shot_buckets if b >= len(y)), None)
    if bucket is None:
        raise AdapterError(f"{len(y)} shots exceed the largest shot bucket {options.shot_buckets[-1]}: "
                         "use fewer shots or add a bigger bucket to AdapterOptions.shot_buckets")

    # candidate r = (fold f, pull p): fold -1 trains on every shot; fold f >= 0 holds fold f back
    fold = _folds(groups, options.folds, options.seed)
    pulls = np.asarray(sorted(options.pulls), np.float64)
    cand_fold = np.repeat(np.arange(-1, options.folds), len(pulls))
    cand_pull = np.tile(pulls, options.folds + 1)
    held = (fold[None, :] == cand_fold[:, None]) & (cand_fold[:, None] >= 0)
    train = (~held).astype(np.float32)
    weight = train / np.stack([np.bincount(y, t, len(names))[y] * len(names) for t in train]).clip(1e-9)
    weight *= train
    weight /= weight.sum(1, keepdims=True).clip(1e-9)
    pad = bucket - len(y)
    emb_p, y_p = jnp.asarray(np.pad(emb, [(0, pad), (0, 0)])), jnp.asarray(np.pad(y, (0, pad)))
    w_p = jnp.asarray(np.pad(weight, [(0, 0), (0, pad)]))
    present = np.zeros((len(cand_pull), options.max_classes), np.float32)
    for r, t in enumerate(train):
        present[r, np.unique(y[t > 0])] = 1.0
    present_p = jnp.asarray(present)
    scored = held & (present[:, y] > 0)  # a held-back shot counts only if its class has shots in training

    net = AdapterNet(emb.shape[1], options.max_classes, len(cand_pull), rngs=nnx.Rngs(0))
    start = _start(emb, y, names, base, options.max_classes)
    _set(net, start, cand_pull, options.bias_pull)
    optimizer = nnx.Optimizer(net, _TX, wrt=nnx.Param)
    optimizer.opt_state.hyperparams["learning_rate"][...] = options.lr
    step = nnx.cached_partial(train_step, net, optimizer)
    full = cand_fold == -1
    fitting = np.flatnonzero(full & np.isfinite(cand_pull)) if np.isfinite(pulls).any() else np.flatnonzero(full)
    history: list[float] = []
    while len(history) < options.max_steps:
        chunk = np.asarray(step(emb_p, y_p, w_p, present_p))[:, fitting].mean(1)
        history.extend(chunk.tolist())
        if on_step is not None:
            on_step(len(history) - 1, history[-1])
    ce, correct = (np.asarray(a)[:, : len(y)] for a in eval_step(net, emb_p, y_p, jnp.float32(options.cv_temperature)))

    # weight each pull by the likelihood its fold candidates gave the held-back shots (uniform without any)
    cv_losses: dict[float, float] = {}
    weights, heldout_acc = np.full(len(pulls), 1.0 / len(pulls)), None
    if scored.any():
        per_pull = [scored[cand_pull == p] for p in pulls]
        loglik = -np.array([(ce[cand_pull == p] * h).sum() for p, h in zip(pulls, per_pull, strict=True)])
        weights = np.exp(loglik - loglik.max())
        weights /= weights.sum()
        cv_losses = {float(p): float(-v / h.sum()) for p, v, h in zip(pulls, loglik, per_pull, strict=True)}
        accs = np.array([(correct[cand_pull == p] * h).sum() / h.sum() for p, h in zip(pulls, per_pull, strict=True)])
        heldout_acc = float(weights @ accs)
    c = len(names)
    rows = slice(0, len(pulls))  # the fold -1 candidates, in pull order
    arrays = {"mix": np.asarray(net.mix[...])[rows, :, :c], "kernel": np.asarray(net.kernel[...])[rows, :, :c],
              "bias": np.asarray(net.bias[...])[rows, :c], "base_kernel": start["base_kernel"],
              "base_bias": start["base_bias"], "center": start["center"], "scale": np.reshape(start["scale"], 1),
              "pull": np.where(np.isinf(pulls), 0.0, pulls), "frozen": np.isinf(pulls).astype(np.float32),
              "weights": weights}
    mode = "residual" if base is not None else "imprint"
    created = datetime.now(UTC).isoformat(timespec="seconds")
    shots = {n: int(c) for n, c in zip(names, counts, strict=True)}
    adapter = Adapter(arrays, names, base.backbone_id if base else backbone_id, shots, created, mode)
    report = FitReport(history, {float(p): float(w) for p, w in zip(pulls, weights, strict=True)}, cv_losses,
                       heldout_acc, int(scored.any(0).sum()), len(history), time.perf_counter() - t0, mode)
    return adapter, report

"""Train an :class:`~emowidgets.model.EmotionNet` on FER2013: resumable, seeded, the same on CPU and GPU.

One ``jax.jit``-compiled call runs a whole epoch as a ``lax.scan`` over batches, with the data and
the augmentation on the device, so a GPU is not starved by Python. Every epoch writes a
checkpoint (safetensors) and a metrics line; running the same command again resumes.
Selection uses ``val`` only; ``test`` is for ``emowidgets evaluate`` on the final weights.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import lzma
import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.scipy.ndimage import map_coordinates
from safetensors.numpy import load_file
from tqdm.auto import tqdm

from emowidgets.assets import model_path
from emowidgets.errors import DataFileError, ModelFileError, OptionsError
from emowidgets.model import CROP_SIZE, EmotionNet, ModelConfig, load_model, save_model
from emowidgets.modelfile import write_safetensors
from emowidgets.vocab import EMOTIONS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CACHE_DIR = Path.home() / ".cache" / "emowidgets"
# FER+ vote columns (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF)
# that correspond to FER2013 classes 0..6 (angry, disgust, fear, happy, sad, surprise, neutral).
FERPLUS_TO_FER = (4, 5, 6, 1, 3, 2, 0)
log = logging.getLogger("emowidgets.tools.train")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Recipe for one training run; stored as JSON in ``emowidgets/configs/NAME.json``."""

    name: str
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    epochs: int = 100
    batch_size: int = 128
    peak_lr: float = 0.05
    warmup_epochs: int = 5
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    ferplus_mix: float = 0.0  # weight of the FER+ vote distribution in the target
    mixup_alpha: float = 0.0  # 0 disables mixup
    ema_decay: float = 0.999
    shift: float = 4.0  # pixels
    rotate: float = 10.0  # degrees
    scale: float = 0.1
    erase_p: float = 0.5
    teacher: str = ""  # weights file to distil from ("" = no distillation)
    init: str = ""  # start from these weights ("main", "fast" or a path; "" = random initialisation)
    degrade_p: float = 0.0  # share of faces shrunk to DEGRADE_PX and scaled back, as small faces in a call
    distill_alpha: float = 0.7
    distill_temp: float = 4.0
    train_limit: int = 0  # use only the first N training images (tests)
    seed: int = 0

    @classmethod
    def load(cls, name_or_path: str) -> TrainConfig:
        """Read a config by name (``emowidgets/configs/NAME.json``) or by path."""
        path = Path(name_or_path)
        if not path.suffix:
            path = CONFIG_DIR / f"{name_or_path}.json"
        if not path.is_file():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise OptionsError(f"no training config {name_or_path!r}; known: {', '.join(known)}")
        try:
            raw = json.loads(path.read_text())
            raw["model"] = ModelConfig(**{**raw.get("model", {}), "widths": tuple(raw.get("model", {}).get(
                "widths", ModelConfig.widths))})
            return cls(**raw)
        except (ValueError, TypeError, AttributeError) as exc:
            raise OptionsError(f"training config {path} is not valid: {exc}") from exc

    def to_json(self) -> str:
        """Canonical JSON, stored in checkpoints to refuse resuming a different recipe."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def load_fer(path: str | Path, splits: tuple[str, ...] = ("train", "val")) -> dict[str, np.ndarray]:
    """Load FER2013 arrays from ``.npz`` (or an ``.npz.xz`` copy), only the ``splits`` asked for."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file not found: {path}")
    try:
        raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            out = {k: data[k] for k in data.files if k.split("_")[0] in splits}
    except (OSError, ValueError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path} is not a readable .npz file: {exc}") from exc
    for split in splits:
        if f"{split}_x" not in out or f"{split}_y" not in out:
            raise DataFileError(f"{path} has no {split}_x/{split}_y arrays")
    return out


def soft_targets(y: np.ndarray, votes: np.ndarray | None, cfg: TrainConfig) -> np.ndarray:
    """Training targets: one-hot FER2013 labels, mixed with FER+ votes, then label-smoothed."""
    k = cfg.model.num_classes
    target = np.eye(k, dtype=np.float32)[y]
    if cfg.ferplus_mix > 0 and votes is not None:
        fp = votes[:, FERPLUS_TO_FER].astype(np.float32)
        total = fp.sum(axis=1, keepdims=True)
        fp = np.where(total > 0, fp / np.maximum(total, 1), target)
        target = (1 - cfg.ferplus_mix) * target + cfg.ferplus_mix * fp
    return (1 - cfg.label_smoothing) * target + cfg.label_smoothing / k


def augment(x: jax.Array, key: jax.Array, cfg: TrainConfig) -> jax.Array:
    """Random affine (shift, rotation, scale, flip), brightness/contrast and erasing, vectorised."""
    b, s = x.shape[0], CROP_SIZE
    k = jax.random.split(key, 8)
    ang = jax.random.uniform(k[0], (b,), minval=-cfg.rotate, maxval=cfg.rotate) * (math.pi / 180)
    scl = jax.random.uniform(k[1], (b,), minval=1 - cfg.scale, maxval=1 + cfg.scale)
    sh = jax.random.uniform(k[2], (b, 2), minval=-cfg.shift, maxval=cfg.shift)
    flip = jax.random.bernoulli(k[3], 0.5, (b,))
    yy, xx = jnp.meshgrid(jnp.arange(s, dtype=jnp.float32), jnp.arange(s, dtype=jnp.float32), indexing="ij")
    c = (s - 1) / 2

    def warp(img: jax.Array, a: jax.Array, z: jax.Array, t: jax.Array, f: jax.Array) -> jax.Array:
        xs = jnp.where(f, (s - 1) - xx, xx) - c
        ys = yy - c
        src_x = (jnp.cos(a) * xs - jnp.sin(a) * ys) / z + c + t[0]
        src_y = (jnp.sin(a) * xs + jnp.cos(a) * ys) / z + c + t[1]
        return map_coordinates(img, [src_y, src_x], order=1, mode="reflect")

    x = jax.vmap(warp)(x, ang, scl, sh, flip)
    contrast = jax.random.uniform(k[4], (b, 1, 1), minval=0.7, maxval=1.3)
    bright = jax.random.uniform(k[5], (b, 1, 1), minval=-0.15, maxval=0.15)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = jnp.clip((x - mean) * contrast + mean + bright, 0.0, 1.0)
    size = jax.random.randint(k[6], (b, 2), 8, 21)
    corner = jax.random.uniform(k[7], (b, 2)) * (s - size)
    inside = (
        (yy >= corner[:, 0, None, None]) & (yy < corner[:, 0, None, None] + size[:, 0, None, None])
        & (xx >= corner[:, 1, None, None]) & (xx < corner[:, 1, None, None] + size[:, 1, None, None])
    )
    erase = jax.random.bernoulli(jax.random.fold_in(key, 1), cfg.erase_p, (b, 1, 1))
    noise = jax.random.uniform(jax.random.fold_in(key, 2), x.shape)
    return jnp.where(inside & erase, noise, x)


DEGRADE_PX = (26, 30, 34, 40, 44)
"""Sides a face is shrunk to by :func:`degrade` (benchmarks/crop_resolution.py measures the same sizes)."""


def degrade(x: jax.Array, key: jax.Array, p: float) -> jax.Array:
    """A share ``p`` of the faces ``(B, 48, 48)`` seen at fewer pixels, as a small face in a call gallery is:
    shrunk (antialiased) to one of :data:`DEGRADE_PX` a side, then scaled back up to 48 (bilinear)."""
    b, s = x.shape[0], CROP_SIZE
    k_use, k_px = jax.random.split(key)
    use = jax.random.bernoulli(k_use, p, (b,))
    choice = jax.random.randint(k_px, (b,), 0, len(DEGRADE_PX))
    out = x
    for i, px in enumerate(DEGRADE_PX):  # static sizes: one resize pair per size, each face picks one
        back = jax.image.resize(jax.image.resize(x, (b, px, px), "linear", antialias=True), (b, s, s), "linear")
        out = jnp.where((use & (choice == i))[:, None, None], back, out)
    return out


def lr_schedule(cfg: TrainConfig, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    """One-cycle: linear warm-up from peak/25 to the peak over ``warmup_epochs``, then cosine down to peak/10^4
    at ``total_steps`` (rebuilt when a time budget cuts the run short)."""
    warmup = max(1, cfg.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(init_value=cfg.peak_lr / 25, peak_value=cfg.peak_lr,
                                              warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
                                              end_value=cfg.peak_lr * 1e-4)


CARRY = ("params", "batch_stats", "optimizer", "ema_params", "ema_batch_stats")
"""The training state's parts, in :meth:`Trainer.carry` order: each leaf is stored as ``PART/PATH``."""


def _tree_to_arrays(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    """``tree``'s leaves by name, ``prefix`` + the leaf's path (``params/backbone/stages/0/0/conv/kernel``)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}/{jax.tree_util.keystr(path, simple=True, separator='/')}": np.asarray(leaf)
            for path, leaf in leaves}


def _arrays_to_tree(prefix: str, arrays: dict[str, np.ndarray], like: Any, path: Path) -> Any:
    """The tree shaped as ``like`` with its leaves read by name from ``arrays`` (a checkpoint at ``path``)."""
    names = list(_tree_to_arrays(prefix, like))
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ModelFileError(f"{path} has no {missing[0]} (and {len(missing) - 1} more): written by another "
                             "version of the trainer; delete it to start the run again, or use another --run-dir")
    return jax.tree.unflatten(jax.tree.structure(like), [jnp.asarray(arrays[n]) for n in names])


class Trainer:
    """Holds the functional training state of one run and its compiled epoch/eval functions."""

    def __init__(self, cfg: TrainConfig, data: dict[str, np.ndarray]) -> None:
        self.cfg = cfg
        model = EmotionNet(cfg.model, rngs=nnx.Rngs(cfg.seed))
        if cfg.init:  # fine-tuning: the given weights, dropout and batch norm as a fresh net has them
            start, _ = load_model(model_path(cfg.init).expanduser())
            if start.config != cfg.model:
                raise OptionsError(f"init weights {cfg.init!r} are a {start.config} net; the recipe trains "
                                   f"{cfg.model}")
            nnx.update(model, nnx.state(start, (nnx.Param, nnx.BatchStat)))
        model.train()
        graph_train, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)  # type: ignore[misc]
        self.graph_train: Any = graph_train
        self.params: Any = params
        self.bstats: Any = bstats
        model.eval()
        self.graph_eval = nnx.graphdef(model)
        self.ema_params, self.ema_bstats = self.params, self.bstats
        # SGD with Nesterov momentum and decoupled weight decay; the learning rate of each step comes with the
        # batch (lr_schedule), set in the optimizer's state: a run cut short by its time budget keeps its compile
        self.tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                              optax.inject_hyperparams(optax.sgd)(learning_rate=cfg.peak_lr, momentum=0.9,
                                                                  nesterov=True))
        self.opt_state = self.tx.init(self.params)
        n = cfg.train_limit or len(data["train_y"])
        self.train_x = jnp.asarray(data["train_x"][:n])
        votes = data.get("train_ferplus_votes")
        self.train_t = jnp.asarray(soft_targets(data["train_y"][:n], None if votes is None else votes[:n], cfg))
        self.val_x, self.val_y = data["val_x"], data["val_y"]
        self.steps_per_epoch = n // cfg.batch_size
        self.teacher: tuple[Any, Any] | None = None
        if cfg.teacher:
            teacher, _ = load_model(Path(cfg.teacher).expanduser())
            self.teacher = nnx.split(teacher)
        self.epoch_fn = jax.jit(self._epoch)
        self.eval_fn = jax.jit(self._eval_logits)

    def _loss(self, params: Any, bstats: Any, teacher: Any, x: jax.Array, t: jax.Array, key: jax.Array
              ) -> tuple[jax.Array, Any]:
        bstats = jax.tree.map(lambda v: v, bstats)  # fresh Variables at this trace level
        model = nnx.merge(self.graph_train, params, bstats)
        logits = model.classify(model.embed(x), rngs=nnx.Rngs(dropout=key))
        loss = optax.softmax_cross_entropy(logits, t).mean()
        if self.teacher is not None:
            tlogits = jax.lax.stop_gradient(nnx.merge(self.teacher[0], teacher)(x))
            temp = self.cfg.distill_temp
            kd = optax.kl_divergence(jax.nn.log_softmax(logits / temp), jax.nn.softmax(tlogits / temp)).mean()
            loss = (1 - self.cfg.distill_alpha) * loss + self.cfg.distill_alpha * temp**2 * kd
        return loss, nnx.state(model, nnx.BatchStat)

    def _epoch(self, carry: Any, data: tuple[jax.Array, jax.Array, Any], idx: jax.Array, keys: jax.Array,
               steps: jax.Array, lrs: jax.Array) -> tuple[Any, jax.Array]:
        """Run the steps ``steps`` (of the whole run) on batches ``idx`` at learning rates ``lrs``, as one
        ``lax.scan``."""
        cfg = self.cfg
        train_x, train_t, teacher = data

        def step(carry: Any, inp: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            params, bstats, opt_state, ema_p, ema_b = carry
            batch, k, i, lr = inp
            ka, kd, km = jax.random.split(k, 3)
            x = augment(train_x[batch].astype(jnp.float32) / 255.0, ka, cfg)
            if cfg.degrade_p > 0:
                x = degrade(x, jax.random.fold_in(ka, 7), cfg.degrade_p)
            t = train_t[batch]
            if cfg.mixup_alpha > 0:
                lam = jax.random.beta(km, cfg.mixup_alpha, cfg.mixup_alpha)
                x = lam * x + (1 - lam) * x[::-1]
                t = lam * t + (1 - lam) * t[::-1]
            (loss, bstats), grads = jax.value_and_grad(self._loss, has_aux=True)(params, bstats, teacher, x, t,
                                                                                 kd)
            opt_state[1].hyperparams["learning_rate"] = lr
            updates, opt_state = self.tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            d = jnp.minimum(cfg.ema_decay, (1.0 + i) / (10.0 + i))
            ema_p = jax.tree.map(lambda e, p: d * e + (1 - d) * p, ema_p, params)
            ema_b = jax.tree.map(lambda e, p: d * e + (1 - d) * p, ema_b, bstats)
            return (params, bstats, opt_state, ema_p, ema_b), loss

        if idx.shape[0] == 1:  # no loop at all: XLA:CPU runs convolutions inside loops very slowly
            return step(carry, (idx[0], keys[0], steps[0], lrs[0]))
        carry, losses = jax.lax.scan(step, carry, (idx, keys, steps, lrs))
        return carry, losses.mean()

    def _eval_logits(self, params: Any, bstats: Any, x: jax.Array) -> jax.Array:
        model = nnx.merge(self.graph_eval, params, bstats)
        return model(x) + model(x[:, :, ::-1])

    def val_accuracy(self, batch: int = 512) -> float:
        """Accuracy of the EMA weights on ``val`` with flip test-time augmentation."""
        preds = []
        for start in range(0, len(self.val_y), batch):
            chunk = self.val_x[start : start + batch].astype(np.float32) / 255.0
            pad = batch - len(chunk)
            chunk = np.pad(chunk, ((0, pad), (0, 0), (0, 0)))
            logits = self.eval_fn(self.ema_params, self.ema_bstats, jnp.asarray(chunk))
            preds.append(np.asarray(logits.argmax(-1))[: batch - pad])
        return float((np.concatenate(preds) == self.val_y).mean())

    def ema_model(self) -> EmotionNet:
        """The EMA weights as an eval-mode model."""
        return nnx.merge(self.graph_eval, self.ema_params, self.ema_bstats)

    def carry(self) -> Any:
        return (self.params, self.bstats, self.opt_state, self.ema_params, self.ema_bstats)

    def set_carry(self, carry: Any) -> None:
        self.params, self.bstats, self.opt_state, self.ema_params, self.ema_bstats = carry

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        arrays: dict[str, np.ndarray] = {}
        for part, tree in zip(CARRY, self.carry(), strict=True):
            arrays.update(_tree_to_arrays(part, tree))
        write_safetensors(path, arrays, {k: json.dumps(v) for k, v in meta.items()}, "training checkpoint")

    def restore(self, path: Path) -> dict[str, Any]:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        if meta.get("config") != self.cfg.to_json():
            raise ModelFileError(f"{path} was written by a different recipe; delete it or use another --run-dir")
        arrays = load_file(str(path))
        self.set_carry(tuple(_arrays_to_tree(part, arrays, like, path)
                             for part, like in zip(CARRY, self.carry(), strict=True)))
        return meta


def train(
    cfg: TrainConfig,
    data_path: str | Path,
    run_dir: str | Path | None = None,
    export: str | Path | None = None,
    time_budget: float | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) ``cfg``; return a summary with the best val accuracy.

    Args:
        cfg: the recipe.
        data_path: FER2013 ``.npz`` (or ``.npz.xz``) with ``train_*`` and ``val_*`` arrays.
        run_dir: checkpoint/log folder; default ``~/.cache/emowidgets/runs/NAME``. Resumes from it.
        export: where to write the best (val) EMA weights as safetensors.
        time_budget: seconds; after two epochs the epoch count is cut to fit (for a lent GPU).
        progress: show a tqdm bar.
        on_epoch: called with each epoch's metrics.
    """
    run = Path(run_dir) if run_dir else CACHE_DIR / "runs" / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return _train(cfg, data_path, run, export, time_budget, progress, on_epoch)
    finally:
        log.removeHandler(handler)
        handler.close()


def add_neutral_reference(path: str | Path, neutral: np.ndarray, flip_tta: bool | None = None) -> dict[str, str]:
    """Store in the weights file ``path`` its neutral reference: the mean embedding of ``neutral`` ``(N, 48, 48)``
    uint8 faces (FER2013's neutral *validation* faces), with flip TTA as the model is used live (default: on,
    as ``live(model=path)`` uses a weights path; the shipped fast model runs without it). Auto-calibration
    shifts each face's resting embedding onto it (:mod:`emowidgets.autocalib`). Validation, not training faces:
    the network has fitted its training faces, so their mean sits deeper in "neutral" than an unseen face at rest
    (on people.npz a training-face reference gained 1.3 points, the validation one 4). Only the metadata changes:
    the backbone id that adapters are tied to stays the same. Returns the file's new metadata."""
    from emowidgets.autocalib import REFERENCE_KEY
    from emowidgets.infer import ClassifierOptions, EmotionClassifier
    from emowidgets.model import update_metadata

    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=str(path), flip_tta=flip_tta))
    embs = np.concatenate([classifier.classify(neutral[i : i + 64].astype(np.float32) / 255).embeddings
                           for i in range(0, len(neutral), 64)])
    return update_metadata(path, **{REFERENCE_KEY: json.dumps([round(float(v), 6) for v in embs.mean(0)])})


def _train(cfg: TrainConfig, data_path: str | Path, run: Path, export: str | Path | None,
           time_budget: float | None, progress: bool,
           on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    start = time.monotonic()
    trainer = Trainer(cfg, load_fer(data_path))
    ckpt, best_path = run / "checkpoint.safetensors", run / "best.safetensors"
    meta: dict[str, Any] = {"config": cfg.to_json(), "epoch": 0, "epochs": cfg.epochs, "best_val": 0.0,
                            "best_epoch": 0, "seconds": 0.0}
    if ckpt.is_file():
        meta = trainer.restore(ckpt)
        log.info("resumed %s at epoch %d/%d (best val %.4f)", cfg.name, meta["epoch"], meta["epochs"],
                 meta["best_val"])
    log.info("config %s on %s, %d steps/epoch", cfg.to_json(), jax.devices()[0].device_kind,
             trainer.steps_per_epoch)
    bar = tqdm(total=meta["epochs"], initial=meta["epoch"], desc=cfg.name, disable=not progress)
    rng = np.random.default_rng(cfg.seed)
    for _ in range(meta["epoch"]):  # replay the shuffles so a resumed run sees the same batches
        rng.permutation(len(trainer.train_t))
    epoch_times: list[float] = []
    # A GPU runs the whole epoch as one scan; XLA's CPU backend runs convolutions inside a loop body far
    # slower (minutes per step for the main net), so on a CPU each step is its own call.
    chunk = 1 if jax.default_backend() == "cpu" else trainer.steps_per_epoch
    while meta["epoch"] < meta["epochs"]:
        t0 = time.monotonic()
        perm = rng.permutation(len(trainer.train_t))[: trainer.steps_per_epoch * cfg.batch_size]
        idx = jnp.asarray(perm.reshape(trainer.steps_per_epoch, cfg.batch_size).astype(np.int32))
        key = jax.random.fold_in(jax.random.key(cfg.seed), meta["epoch"])
        step0 = meta["epoch"] * trainer.steps_per_epoch
        run_steps = np.arange(step0, step0 + trainer.steps_per_epoch)
        schedule = lr_schedule(cfg, meta["epochs"] * trainer.steps_per_epoch, trainer.steps_per_epoch)
        lrs = jnp.asarray(schedule(run_steps), jnp.float32)
        steps = jnp.asarray(run_steps, jnp.float32)
        data = (trainer.train_x, trainer.train_t, trainer.teacher[1] if trainer.teacher else None)
        keys = jax.random.split(key, trainer.steps_per_epoch)
        carry, losses = trainer.carry(), []
        for s in range(0, trainer.steps_per_epoch, chunk):
            carry, part = trainer.epoch_fn(carry, data, idx[s : s + chunk], keys[s : s + chunk],
                                           steps[s : s + chunk], lrs[s : s + chunk])
            losses.append(part)
        trainer.set_carry(carry)
        loss = jnp.mean(jnp.stack(losses))
        val = trainer.val_accuracy()
        meta["epoch"] += 1
        dt = time.monotonic() - t0
        epoch_times.append(dt)
        meta["seconds"] += dt
        if val > meta["best_val"]:
            meta["best_val"], meta["best_epoch"] = val, meta["epoch"]
            save_model(trainer.ema_model(), best_path, val_accuracy=f"{val:.4f}", epoch=str(meta["epoch"]))
        if time_budget and len(epoch_times) == 2:
            per_epoch = epoch_times[1]
            fit = int((time_budget - (time.monotonic() - start)) / per_epoch) + meta["epoch"]
            if fit < meta["epochs"]:
                log.info("time budget %.0f s: %.1f s/epoch, cutting epochs %d -> %d", time_budget, per_epoch,
                         meta["epochs"], fit)
                meta["epochs"] = max(fit, meta["epoch"] + 1)
                bar.total = meta["epochs"]
        record = {"epoch": meta["epoch"], "loss": float(loss), "val_accuracy": val, "seconds": dt}
        log.info(json.dumps(record))
        with (run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        trainer.save(ckpt, meta)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{val:.4f}", best=f"{meta['best_val']:.4f}")
        if on_epoch:
            on_epoch(record)
    bar.close()
    summary = {"name": cfg.name, "best_val": meta["best_val"], "best_epoch": meta["best_epoch"],
               "epochs": meta["epochs"], "train_seconds": round(meta["seconds"], 1),
               "device": jax.devices()[0].device_kind}
    if export:
        model, _ = load_model(best_path)
        save_model(model, export, **{k: str(v) for k, v in summary.items()})
        add_neutral_reference(export, trainer.val_x[trainer.val_y == EMOTIONS.index("neutral")])
    log.info("done %s", json.dumps(summary))
    return summary

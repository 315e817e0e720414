"""Per-group few-shot evaluation: does calibrating on K shots of a person beat the base model on them?

For every group (a person), seed and K, K images per class of that group are the shots and the
group's other images the queries. Every head is scored on the same queries: the base model zero-shot,
the shipped adapter (:func:`~emowidgets.adapter_fit.fit_adapter`) and two simple heads on the same frozen
embeddings (cosine prototypes; logistic regression on standardised embeddings). This is what
``emowidgets evaluate fewshot`` prints.

Near-duplicates: when the file has a ``take`` array (a capture session, e.g. one burst of photos),
shots and queries of a class come from different takes, so a query is never a near-copy of a shot. A
class with a single take (people.npz's neutral: 1-3 images of one sitting) keeps one image back as a
query from the same take. Without ``take``, shots are drawn at random. A class needs two images in a
group to be used there.
"""

from __future__ import annotations

import logging
import statistics
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from tqdm.auto import tqdm

from emowidgets.adapter import BaseHead
from emowidgets.adapter_fit import AdapterOptions, fit_adapter
from emowidgets.errors import DataFileError, OptionsError
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import EMOTIONS
from emowidgets.tools.evaluation import face_crops, load_labelled

log = logging.getLogger("emowidgets.tools.fewshot")
HEADS = ("zero_shot", "few_shot", "prototype", "logistic")
"""Heads scored on every split: base model, shipped adapter, cosine prototypes, logistic regression."""


def load_array(path: str | Path, key: str, n: int, split: str | None = None) -> np.ndarray | None:
    """The per-image array ``SPLIT_key`` (or ``key``) of an ``.npz`` (``(n, ...)``), or None if absent.

    Raises:
        DataFileError: unreadable file or wrong length.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            name = next((k for k in ([f"{split}_{key}"] if split else []) + [key] if k in data.files), None)
            if name is None:
                return None
            values = data[name]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path} is not a readable .npz file: {exc}") from exc
    if values.ndim < 1 or len(values) != n:
        raise DataFileError(f"array {name!r} must have one entry per image ({n}), got shape {values.shape}")
    return values


def load_groups(path: str | Path, key: str, n: int, split: str | None = None) -> np.ndarray:
    """The group array ``key`` (``(n,)``, integers or strings) of an ``.npz``.

    Raises:
        DataFileError: missing key or wrong shape.
    """
    groups = load_array(path, key, n, split)
    if groups is None:
        with np.load(path, allow_pickle=False) as data:
            files = ", ".join(data.files)
        raise DataFileError(f"{path} has no group array {key!r} (it has: {files}); "
                            "pass --group-key with the array naming each image's person")
    if groups.ndim != 1:
        raise DataFileError(f"group array {key!r} must have one entry per image ({n},), got {groups.shape}")
    return groups


def draw_split(rng: np.random.Generator, members: np.ndarray, y: np.ndarray, take: np.ndarray | None, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Shot and query indices of one group: up to ``k`` shots per class, queries from other takes."""
    shots: list[int] = []
    queries: list[int] = []
    for c in range(len(EMOTIONS)):
        idx = rng.permutation(np.flatnonzero(members & (y == c)))
        if len(idx) < 2:
            continue
        takes = np.unique(take[idx]) if take is not None else np.zeros(0)
        if take is None or len(takes) < 2:  # no take, or one take: a plain split, at least one query
            n = min(k, len(idx) - 1)
            shots += idx[:n].tolist()
            queries += idx[n:].tolist()
            continue
        used: list[int] = []
        for t in rng.permutation(takes)[:-1]:  # the last take is always left for queries
            used += idx[take[idx] == t][: k - len(used)].tolist()
            if len(used) >= k:
                break
        shots += used
        queries += [int(i) for i in idx if take[i] not in set(take[used])]
    return np.array(shots, int), np.array(queries, int)


def prototype_predict(shots: np.ndarray, labels: np.ndarray, queries: np.ndarray, n_classes: int) -> np.ndarray:
    """Cosine prototypes: class means of centred, L2-normalised shot embeddings; nearest by cosine."""
    means = np.stack([shots[labels == c].mean(0) for c in range(n_classes)])
    center = means.mean(0)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-9)

    protos = unit(np.stack([unit(shots - center)[labels == c].mean(0) for c in range(n_classes)]))
    return np.asarray((unit(queries - center) @ protos.T).argmax(1))


def logistic_predict(shots: np.ndarray, labels: np.ndarray, queries: np.ndarray, n_classes: int,
                     l2: float = 1e-3) -> np.ndarray:
    """Multinomial logistic regression (L-BFGS, L2 ``l2``) on embeddings standardised by the shots."""
    center = shots.mean(0)
    scale = np.sqrt(((shots - center) ** 2).mean()) + 1e-6
    x, q = (shots - center) / scale, (queries - center) / scale
    onehot = np.eye(n_classes)[labels]
    d = x.shape[1]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        kernel, bias = w[: d * n_classes].reshape(d, n_classes), w[d * n_classes :]
        logp = log_softmax(x @ kernel + bias, axis=1)
        g = (np.exp(logp) - onehot) / len(x)
        value = -(onehot * logp).sum() / len(x) + l2 * (kernel**2).sum()
        return value, np.concatenate([(x.T @ g + 2 * l2 * kernel).ravel(), g.sum(0)])

    w = minimize(loss, np.zeros(d * n_classes + n_classes), jac=True, method="L-BFGS-B").x
    return np.asarray((q @ w[: d * n_classes].reshape(d, n_classes) + w[d * n_classes :]).argmax(1))


def _embed(classifier: EmotionClassifier, crops: np.ndarray, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    probs, embs = [], []
    for start in tqdm(range(0, len(crops), 64), desc="embed", disable=not progress):
        out = classifier.classify(crops[start : start + 64])
        probs.append(out.probs)
        embs.append(out.embeddings)
    return np.concatenate(probs), np.concatenate(embs)


def evaluate_fewshot_file(path: str | Path, group_key: str, shots: int | Sequence[int] = (1, 2, 3, 5),
                          seeds: int = 1, detect: bool = False, model: str = "main", *, split: str | None = None,
                          flip_tta: bool | None = None, take_key: str = "take", min_votes: float | None = None,
                          prior_correction: bool = True,
                          progress: bool = True, options: AdapterOptions | None = None) -> dict[str, Any]:
    """Few-shot vs zero-shot accuracy per group of ``x``/``y`` (or ``SPLIT_x``/``SPLIT_y``) images in ``path``.

    Args:
        path: ``.npz`` with uint8 images, labels 0-6 and a group array.
        group_key: the array naming each image's group (person); integers or strings.
        shots: shots per class, one row of results per value.
        seeds: repetitions with different shots.
        detect: crop through face detection; test images without a face count as wrong for every head.
        model: ``"main"``, ``"fast"`` or a weights file.
        split: key prefix (``test`` reads ``test_x``/``test_y``/``test_GROUP``).
        flip_tta: average each crop with its mirror (default: the model's live default).
        prior_correction: add the model file's prior correction to the base head (as live).
        take_key: the array of capture sessions keeping shots and queries apart (used if present; ``""``:
            ignore it and split at random).
        min_votes: drop non-neutral images whose raters' share for the performed class is below this
            (needs a ``votes`` array, FER order 0-5).
        progress: progress bars.
        options: adapter settings.

    Returns:
        JSON-able dict: ``rows`` (one per K: ``shots``, ``shots_mean`` (per class, after the take rule),
        ``n_test``, ``zero_shot_accuracy``, ``zero_shot_accuracy_restricted`` (base model among the
        group's classes only), ``few_shot_accuracy``, ``prototype_accuracy``, ``logistic_accuracy``,
        ``fit_seconds_median``, ``pull_weights`` (mean weight of each pull in the adapters), ``per_group``), and
        ``groups``, ``seeds``, ``split``, ``protocol``, ``misses``, ``skipped`` (classes with a single
        image, per group), ``dropped`` (by ``min_votes``), ``model``, ``flip_tta``.

    Raises:
        DataFileError: unreadable file, missing ``x``/``y``/group array, wrong shapes, no votes.
        OptionsError: a shot count or ``seeds`` below 1.
    """
    ks = [shots] if isinstance(shots, int) else list(shots)
    if not ks or min(ks) < 1 or seeds < 1:
        raise OptionsError(f"shots and seeds must be >= 1, got shots={ks}, seeds={seeds}")
    x, y = load_labelled(path, split)
    groups = load_groups(path, group_key, len(x), split)
    take = load_array(path, take_key, len(x), split) if take_key else None
    keep = np.ones(len(x), bool)
    if min_votes is not None:
        votes = load_array(path, "votes", len(x), split)
        if votes is None or votes.ndim != 2 or votes.shape[1] < len(EMOTIONS) - 1:
            raise DataFileError(f"{path} has no (N, 6) 'votes' array for --min-votes")
        share = np.where(y < votes.shape[1], votes[np.arange(len(y)), np.minimum(y, votes.shape[1] - 1)], 1.0)
        keep = (y == EMOTIONS.index("neutral")) | (share >= min_votes)
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=model, flip_tta=flip_tta,
                                                                         prior_correction=prior_correction))
    base = BaseHead.from_classifier(classifier)
    crops, found = face_crops(x, detect, progress=progress)
    base_probs, embs = _embed(classifier, crops, progress)

    usable = keep & found
    skipped = {str(g): [EMOTIONS[c] for c in range(len(EMOTIONS)) if (usable & (groups == g) & (y == c)).sum() == 1]
               for g in np.unique(groups)}
    skipped = {g: v for g, v in skipped.items() if v}
    for g, names in skipped.items():
        log.warning("group %s: skipping %s (a class needs two usable images: a shot and a query)", g, names)
    rows = []
    for k in ks:
        correct = dict.fromkeys([*HEADS, "zero_shot_restricted"], 0)
        n_test, shot_counts, fit_seconds = 0, [], []
        weights: dict[float, list[float]] = {}
        per_group: dict[str, dict[str, float | int]] = {}
        for gi, group in enumerate(tqdm(np.unique(groups), desc=f"{k} shots", disable=not progress)):
            members = (groups == group) & keep & found
            g_correct = dict.fromkeys(HEADS, 0)
            g_n = 0
            for seed in range(seeds):
                shot_idx, query = draw_split(np.random.default_rng([seed, gi, k]), members, y, take, k)
                classes = np.unique(y[shot_idx])
                if len(classes) < 2:
                    continue
                query = query[np.isin(y[query], classes)]
                labels, target = np.searchsorted(classes, y[shot_idx]), np.searchsorted(classes, y[query])
                capture = y[shot_idx] * 1000 + (take[shot_idx] if take is not None else np.arange(len(shot_idx)))
                adapter, report = fit_adapter(embs[shot_idx], labels, [EMOTIONS[c] for c in classes], options,
                                              base=base, groups=capture)
                fit_seconds.append(report.seconds)
                for pull, weight in report.weights.items():
                    weights.setdefault(pull, []).append(weight)
                preds = {"zero_shot": classes.searchsorted(base_probs[query].argmax(1)),
                         "few_shot": adapter.predict(embs[query]).argmax(1),
                         "prototype": prototype_predict(embs[shot_idx], labels, embs[query], len(classes)),
                         "logistic": logistic_predict(embs[shot_idx], labels, embs[query], len(classes))}
                zero_ok = base_probs[query].argmax(1) == y[query]
                for head, pred in preds.items():
                    ok = zero_ok if head == "zero_shot" else pred == target
                    g_correct[head] += int(ok.sum())
                correct["zero_shot_restricted"] += int((base_probs[query][:, classes].argmax(1) == target).sum())
                g_n += len(query)
                shot_counts += np.bincount(labels).tolist()
            if g_n == 0:
                log.warning("group %s: skipped, fewer than two classes with two usable images", group)
                continue
            n_test += g_n
            for head in HEADS:
                correct[head] += g_correct[head]
            per_group[str(group)] = {"n_test": g_n, **{f"{h}_accuracy": g_correct[h] / g_n for h in HEADS}}
        rows.append({"shots": k, "shots_mean": float(np.mean(shot_counts)) if shot_counts else 0.0,
                     "n_test": n_test,
                     **{f"{h}_accuracy": correct[h] / max(n_test, 1) for h in HEADS},
                     "zero_shot_accuracy_restricted": correct["zero_shot_restricted"] / max(n_test, 1),
                     "fit_seconds_median": statistics.median(fit_seconds) if fit_seconds else 0.0,
                     "pull_weights": {str(p): round(float(np.mean(w)), 3) for p, w in sorted(weights.items())},
                     "per_group": per_group})
    return {"rows": rows, "groups": len(per_group), "seeds": seeds, "split": split,
            "protocol": f"shots and queries from different '{take_key}'" if take is not None else "random",
            "misses": int((~found).sum()), "skipped": skipped, "dropped": int((~keep).sum()), "model": model,
            "flip_tta": classifier.flip_tta, "prior_correction": classifier.prior_correction}

"""Per-group few-shot evaluation: does calibrating on K shots of a person beat the base model on them?

For every group (a person, ideally) and seed, K images per class of that group are the shots, an
adapter is fitted on their embeddings, and the group's remaining images are the test set; the base
model is scored zero-shot on the same test images. This is what ``emowidgets evaluate fewshot``
prints. Only real per-person data answers the question; FER2013 has no person ids, so a group key
made up from image indices only checks the machinery (the base model, trained on 28k faces, is hard
to beat with five random strangers' faces per class).
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from emowidgets.adapter import AdapterOptions, BaseHead, fit_adapter
from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import DataFileError
from emowidgets.evaluate import _as_crops, detect_largest_crop, load_labelled
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import CROP_SIZE, EMOTIONS

log = logging.getLogger("emowidgets.fewshot")


def load_groups(path: str | Path, key: str, n: int) -> np.ndarray:
    """The group array ``key`` (``(n,)``, integers or strings) of an ``.npz``.

    Raises:
        DataFileError: missing key or wrong shape.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if key not in data.files:
                raise DataFileError(f"{path} has no group array {key!r} (it has: {', '.join(data.files)}); "
                                    "pass --group-key with the array naming each image's person")
            groups = data[key]
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(f"{path} is not a readable .npz file: {exc}") from exc
    if groups.shape != (n,):
        raise DataFileError(f"group array {key!r} must have one entry per image ({n},), got {groups.shape}")
    return groups


def _embed(classifier: EmotionClassifier, crops: np.ndarray, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    probs, embs = [], []
    for start in tqdm(range(0, len(crops), 64), desc="embed", disable=not progress):
        out = classifier.classify(crops[start : start + 64])
        probs.append(out.probs)
        embs.append(out.embeddings)
    return np.concatenate(probs), np.concatenate(embs)


def evaluate_fewshot_file(path: str | Path, group_key: str, shots: int, seeds: int = 1, detect: bool = False,
                          model: str = "main", progress: bool = True,
                          options: AdapterOptions | None = None) -> dict[str, Any]:
    """Few-shot vs zero-shot accuracy per group of ``x``/``y`` images in ``path``.

    Classes with fewer than ``shots + 1`` images in a group are left out of that group (logged);
    groups left with fewer than two classes are skipped. With ``detect``, shots come only from images
    where a face was found, and test images without a face count as wrong for both models.

    Returns:
        JSON-able dict: ``groups`` (groups evaluated), ``shots``, ``seeds``, ``n_test`` (test images over
        all groups and seeds), ``zero_shot_accuracy`` (base model, 7 classes),
        ``zero_shot_accuracy_restricted`` (base model choosing among the group's evaluated classes
        only, like the adapter), ``few_shot_accuracy``, ``fit_seconds_median``, ``misses`` (no face),
        ``skipped`` (``{group: [class, ...]}``) and ``per_group``.

    Raises:
        DataFileError: unreadable file, missing ``x``/``y``/group array, wrong shapes.
        ValueError: ``shots`` or ``seeds`` below 1.
    """
    if shots < 1 or seeds < 1:
        raise ValueError(f"shots and seeds must be >= 1, got shots={shots}, seeds={seeds}")
    x, y = load_labelled(path)
    groups = load_groups(path, group_key, len(x))
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model=model))
    base = BaseHead.from_classifier(classifier)
    if detect:
        crops = np.zeros((len(x), CROP_SIZE, CROP_SIZE), np.float32)
        found = np.zeros(len(x), bool)
        with FaceDetector.create_from_options(DetectorOptions()) as detector:
            for i, img in enumerate(tqdm(x, desc="detect", disable=not progress)):
                crop = detect_largest_crop(detector, img)
                if crop is not None:
                    crops[i], found[i] = crop, True
    else:
        crops, found = _as_crops(x), np.ones(len(x), bool)
    base_probs, embs = _embed(classifier, crops, progress)

    few_correct = zero_correct = restricted_correct = n_test = 0
    fit_seconds: list[float] = []
    skipped: dict[str, list[str]] = {}
    per_group: dict[str, dict[str, float | int]] = {}
    for gi, group in enumerate(tqdm(np.unique(groups), desc="groups", disable=not progress)):
        members = groups == group
        usable = members & found
        classes = [k for k in range(len(EMOTIONS)) if (usable & (y == k)).sum() >= shots + 1]
        present = [k for k in range(len(EMOTIONS)) if (members & (y == k)).any()]
        left_out = [EMOTIONS[k] for k in present if k not in classes]
        if left_out:
            skipped[str(group)] = left_out
            log.warning("group %s: skipping %s (fewer than %d usable images)", group, left_out, shots + 1)
        if len(classes) < 2:
            log.warning("group %s: skipped, fewer than two classes have %d+ images", group, shots + 1)
            continue
        names = [EMOTIONS[k] for k in classes]
        g_few = g_zero = g_n = 0
        for seed in range(seeds):
            rng = np.random.default_rng([seed, gi])
            shot_idx = np.concatenate([rng.choice(np.flatnonzero(usable & (y == k)), shots, replace=False)
                                       for k in classes])
            test = members & np.isin(y, classes)
            test[shot_idx] = False
            labels = np.searchsorted(classes, y[shot_idx])
            adapter, report = fit_adapter(embs[shot_idx], labels, names, options, base=base)
            fit_seconds.append(report.seconds)
            target = np.searchsorted(classes, y[test])
            ok = found[test]
            few = (adapter.predict(embs[test]).argmax(1) == target) & ok
            zero = (base_probs[test].argmax(1) == y[test]) & ok
            restricted = (base_probs[test][:, classes].argmax(1) == target) & ok
            g_few, g_zero, g_n = g_few + int(few.sum()), g_zero + int(zero.sum()), g_n + int(test.sum())
            restricted_correct += int(restricted.sum())
        few_correct, zero_correct, n_test = few_correct + g_few, zero_correct + g_zero, n_test + g_n
        per_group[str(group)] = {"n_test": g_n, "few_shot_accuracy": g_few / max(g_n, 1),
                                 "zero_shot_accuracy": g_zero / max(g_n, 1)}
    return {
        "groups": len(per_group),
        "shots": shots,
        "seeds": seeds,
        "n_test": n_test,
        "zero_shot_accuracy": zero_correct / max(n_test, 1),
        "zero_shot_accuracy_restricted": restricted_correct / max(n_test, 1),
        "few_shot_accuracy": few_correct / max(n_test, 1),
        "fit_seconds_median": statistics.median(fit_seconds) if fit_seconds else 0.0,
        "misses": int((~found).sum()),
        "skipped": skipped,
        "per_group": per_group,
        "model": model,
    }

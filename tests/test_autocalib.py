"""Label-free calibration's resting face, on real faces of people the model never saw (people.npz)."""

from __future__ import annotations

import numpy as np
from conftest import SHARED

from emowidgets.autocalib import AutoCalibrationOptions, AutoCalibrator, read_reference, resting_face
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.vocab import EMOTIONS


def test_resting_face_leaves_out_a_smiling_start():
    """A track's first 30 frames, 12 of them smiling: the resting face stays on the person's neutral face,
    where a plain median is pulled towards the smile."""
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model="fast"))
    with np.load(SHARED / "data" / "people.npz") as d:
        x, y, person = d["x"], d["y"], d["person"]
    neutral, happy = EMOTIONS.index("neutral"), EMOTIONS.index("happy")
    trimmed, plain = [], []
    for p in np.unique(person):
        calm, smiles = x[(person == p) & (y == neutral)], x[(person == p) & (y == happy)]
        if not len(calm) or not len(smiles):
            continue
        e_calm = classifier.classify(calm.astype(np.float32) / 255).embeddings
        e_smile = classifier.classify(smiles.astype(np.float32) / 255).embeddings
        frames = np.concatenate([e_calm[np.arange(18) % len(e_calm)], e_smile[np.arange(12) % len(e_smile)]])
        target = np.median(e_calm, axis=0)
        trimmed.append(np.linalg.norm(resting_face(frames) - target))
        plain.append(np.linalg.norm(np.median(frames, axis=0) - target))
    assert len(trimmed) >= 20
    assert np.all(np.array(trimmed) <= np.array(plain) + 1e-6), "the trimmed median was farther for someone"
    assert np.mean(trimmed) < 0.5 * np.mean(plain)


def test_a_face_back_after_a_long_absence_learns_its_resting_face_again():
    """Track 1 learns person A's resting face; away longer than ``relearn_after_s``, it comes back as another
    face (other light, another seat): the old shift applies while the new resting face is learned, then the new."""
    classifier = EmotionClassifier.create_from_options(ClassifierOptions(model="fast"))
    with np.load(SHARED / "data" / "people.npz") as d:
        x, y, person = d["x"], d["y"], d["person"]
    calm = [x[(person == p) & (y == EMOTIONS.index("neutral"))] for p in np.unique(person)]
    a, b = (classifier.classify(c[:1].astype(np.float32) / 255).embeddings for c in sorted(calm, key=len)[-2:])
    cal = AutoCalibrator(read_reference(classifier.metadata, classifier.embed_dim),
                         AutoCalibrationOptions(frames=3, relearn_after_s=60.0))
    ids = np.array([1])
    for t in (0, 100, 200):
        cal(ids, a, now_ms=t)
    assert cal.progress(1) == 1.0
    shift_a = cal.reference - resting_face(np.concatenate([a] * 3))
    np.testing.assert_allclose(cal(ids, b, now_ms=30_000), b + shift_a, atol=1e-5)  # back soon: kept
    np.testing.assert_allclose(cal(ids, b, now_ms=95_000), b + shift_a, atol=1e-5)  # back after 65 s: relearning
    assert cal.progress(1) == 1 / 3
    cal(ids, b, now_ms=95_100)
    np.testing.assert_allclose(cal(ids, b, now_ms=95_200), cal.reference[None], atol=1e-5)  # b is now its rest
    assert cal.progress(1) == 1.0

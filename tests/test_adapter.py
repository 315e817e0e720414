"""Few-shot adapter: fitting on real embeddings, one compile per bucket, files, head, fewshot evaluation."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import FER, SHARED
from safetensors.numpy import save_file

from emowidgets.adapter import AdapterSet, BaseHead
from emowidgets.adapter_fit import AdapterOptions, compile_count, fit_adapter
from emowidgets.adapter_io import load_adapter, save_adapter
from emowidgets.errors import DataFileError, ModelFileError
from emowidgets.tools.fewshot import draw_split, evaluate_fewshot_file
from emowidgets.vocab import EMOTIONS

N_IMAGES = 700
PEOPLE = SHARED / "data" / "people.npz"


@pytest.fixture(scope="module")
def fer(classifier):
    """First FER test images: uint8 images, labels, embeddings and base probabilities (real main model)."""
    with np.load(FER) as d:
        x, y = d["test_x"][:N_IMAGES], d["test_y"][:N_IMAGES].astype(np.int64)
    out = classifier.classify(x.astype(np.float32) / 255)
    return x, y, out.embeddings, out.probs


@pytest.fixture(scope="module")
def base(classifier):
    return BaseHead.from_classifier(classifier)


def shots_and_rest(y, classes, k, seed=0):
    rng = np.random.default_rng(seed)
    shots = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in classes])
    rest = np.isin(y, classes)
    rest[shots] = False
    return shots, np.flatnonzero(rest)


def test_new_label_set_beats_chance_on_unseen_images(fer):
    _, y, emb, _ = fer
    classes = [3, 5, 6]  # renamed and no base head: every class is imprinted from its shots
    names = ["smiling", "startled", "calm"]
    shots, rest = shots_and_rest(y, classes, 10)
    steps = []
    adapter, report = fit_adapter(emb[shots], np.searchsorted(classes, y[shots]), names,
                                  on_step=lambda i, loss: steps.append(i))
    acc = (adapter.predict(emb[rest]).argmax(1) == np.searchsorted(classes, y[rest])).mean()
    assert report.mode == "imprint" and adapter.labels == tuple(names)
    assert acc > 0.6, f"accuracy {acc:.2f} on {len(rest)} unseen images (chance 0.33)"
    assert report.heldout_accuracy is not None and report.heldout_n == 30  # every shot held back once
    assert steps[-1] == report.steps - 1 and len(report.losses) == report.steps
    assert np.isfinite(report.losses).all() and report.seconds > 0
    assert set(report.cv_losses) == set(report.weights) == set(AdapterOptions().pulls)
    assert abs(sum(report.weights.values()) - 1) < 1e-5 and adapter.weights == pytest.approx(report.weights)


def test_infinite_pull_is_the_base_model(fer, base):
    _, y, emb, probs = fer
    kept = [0, 3, 6]
    shots, rest = shots_and_rest(y, kept, 5, seed=1)
    options = AdapterOptions(pulls=(math.inf,), max_steps=25)
    adapter, report = fit_adapter(emb[shots], np.searchsorted(kept, y[shots]), [EMOTIONS[c] for c in kept],
                                  options, base=base)
    assert report.mode == "residual" and adapter.backbone_id == base.backbone_id and report.weights == {math.inf: 1}
    restricted = probs[rest][:, kept] / probs[rest][:, kept].sum(1, keepdims=True)
    np.testing.assert_allclose(adapter.predict(emb[rest]), restricted, atol=1e-4)  # exactly the base model


def test_new_class_is_learnt_next_to_base_classes(fer, base):
    _, y, emb, _ = fer
    kept = [0, 3, 6]
    names = [EMOTIONS[c] for c in kept] + ["confused"]  # "confused" stands in for a new class: surprise faces
    shots, rest = shots_and_rest(y, [*kept, 5], 5, seed=1)
    adapter, _ = fit_adapter(emb[shots], np.array([[*kept, 5].index(v) for v in y[shots]]), names, base=base)
    pred = adapter.predict(emb[rest]).argmax(1)
    recall = (pred[y[rest] == 5] == 3).mean()
    assert recall > 0.6, f"new class recall {recall:.2f}"
    base_acc = (pred[y[rest] != 5] == np.searchsorted(kept, y[rest][y[rest] != 5])).mean()
    assert base_acc > 0.75, f"base classes fell to {base_acc:.2f}"


def test_calibrating_a_person_beats_the_base_model_on_their_other_takes(base, classifier):
    """Real people the model never saw (all 29 of people.npz): three shots per class from some takes, queries
    from others (about +9 points on average, docs/calibration.md)."""
    if not PEOPLE.is_file():
        pytest.skip(f"{PEOPLE} not available")
    with np.load(PEOPLE) as d:
        x, y, person, take = d["x"], d["y"].astype(np.int64), d["person"], d["take"]
    out = classifier.classify(x.astype(np.float32) / 255)
    few = zero = n = 0
    for i, p in enumerate(np.unique(person)):
        shots, queries = draw_split(np.random.default_rng(i), person == p, y, take, 3)
        classes = np.unique(y[shots])
        queries = queries[np.isin(y[queries], classes)]
        adapter, _ = fit_adapter(out.embeddings[shots], np.searchsorted(classes, y[shots]),
                                 [EMOTIONS[c] for c in classes], base=base, groups=y[shots] * 10 + take[shots])
        few += (classes[adapter.predict(out.embeddings[queries]).argmax(1)] == y[queries]).sum()
        zero += (out.probs[queries].argmax(1) == y[queries]).sum()
        n += len(queries)
    assert few / n > zero / n + 0.03, f"adapter {few / n:.3f} vs zero-shot {zero / n:.3f} on {n} queries"


def test_train_step_compiles_once_per_bucket(fer, base):
    _, y, emb, _ = fer
    fit_adapter(emb[:10], y[:10] % 2, ["a", "b"])  # warm the 16-shot bucket
    before = compile_count()["train"]
    for n, names, b in [(12, ["a", "b", "c"], None), (16, [f"c{i}" for i in range(12)], None),
                        (14, ["happy", "sad", "new"], base), (9, list(EMOTIONS), base)]:
        fit_adapter(emb[:n], np.arange(n) % len(names), names, AdapterOptions(lr=0.01, max_steps=20), base=b)
    assert compile_count()["train"] == before


def test_bad_label_sets_are_refused(fer):
    _, _, emb, _ = fer
    with pytest.raises(ValueError, match="2 to 12 labels"):
        fit_adapter(emb[:3], np.zeros(3), ["only"])
    with pytest.raises(ValueError, match="distinct"):
        fit_adapter(emb[:4], np.arange(4) % 2, ["a", "a"])
    with pytest.raises(ValueError, match=r"no shots for \['c'\]"):
        fit_adapter(emb[:4], np.arange(4) % 2, ["a", "b", "c"])
    with pytest.raises(ValueError, match="largest shot bucket"):
        fit_adapter(emb[:300], np.arange(300) % 2, ["a", "b"])


@pytest.fixture(scope="module")
def fitted(fer, base):
    _, y, emb, _ = fer
    shots, _ = shots_and_rest(y, [3, 6], 4)
    return fit_adapter(emb[shots], np.searchsorted([3, 6], y[shots]), ["happy", "neutral"], base=base)[0]


def test_save_load_round_trip(tmp_path, fitted, fer, base):
    path = tmp_path / "a.safetensors"
    save_adapter(fitted, path)
    loaded = load_adapter(path, base.backbone_id)
    assert loaded.labels == fitted.labels and loaded.shots == {"happy": 4, "neutral": 4}
    assert loaded.created == fitted.created and loaded.mode == "residual" and loaded.weights == fitted.weights
    np.testing.assert_allclose(loaded.predict(fer[2]), fitted.predict(fer[2]), atol=1e-6)


def _rewrite(path, **changes):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta, arrays = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    arrays.update({k: v for k, v in changes.items() if isinstance(v, np.ndarray)})
    meta.update({k: v for k, v in changes.items() if isinstance(v, str)})
    save_file(arrays, str(path), metadata=meta)


@pytest.mark.parametrize("case, match", [
    ("other_backbone", "another backbone"),
    ("wrong_shape", "wrong shape"),
    ("nan", "NaN or inf"),
    ("oversized", "over the .* limit"),
    ("truncated", "truncated"),
    ("not_safetensors", "not a safetensors"),
    ("not_adapter", "not an emowidgets adapter"),
    ("old_version", "format version '1'.*recalibrate"),
    ("missing", "not found"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")
def test_bad_adapter_files_raise(tmp_path, fitted, base, case, match):
    path = tmp_path / "a.safetensors"
    save_adapter(fitted, path)
    expected = base.backbone_id
    if case == "other_backbone":
        expected = "0123456789abcdef"
    elif case == "wrong_shape":
        _rewrite(path, bias=np.zeros(3, np.float32))
    elif case == "nan":
        kernel = np.zeros((len(fitted.weights), fitted.embed_dim, 2), np.float32)
        kernel[0, 0, 0] = np.nan
        _rewrite(path, kernel=kernel)
    elif case == "oversized":
        path.write_bytes(path.read_bytes() + b"\0" * (1024 * 1024))
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif case == "not_safetensors":
        path.write_bytes(b"PK\x03\x04 this is a zip, or a pickle, or anything else")
    elif case == "not_adapter":
        save_file({"w": np.zeros(3, np.float32)}, str(path), metadata={"format": "something"})
    elif case == "old_version":
        _rewrite(path, format_version="1")
    elif case == "missing":
        path = tmp_path / "nothing.safetensors"
    with pytest.raises(ModelFileError, match=match):
        load_adapter(path, expected)


def test_header_longer_than_file_is_truncated(tmp_path, base):
    path = tmp_path / "a.safetensors"
    path.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(ModelFileError, match="truncated"):
        load_adapter(path, base.backbone_id)


def test_adapter_set_head_mixes_label_sets(fer, fitted, base):
    _, y, emb, probs = fer
    shots, _ = shots_and_rest(y, [3, 4], 3)
    person, _ = fit_adapter(emb[shots], np.searchsorted([3, 4], y[shots]), ["happy", "bored"], base=base)
    head = AdapterSet()
    ids = np.array([7, 8, 9])
    out, labels = head(emb[:3], probs[:3], ids)
    assert labels == EMOTIONS
    np.testing.assert_array_equal(out, probs[:3])
    head.room = fitted
    head.set_person(8, person)
    out, labels = head(emb[:3], probs[:3], ids)
    assert labels == ("happy", "neutral", "bored")
    np.testing.assert_allclose(out[[0, 2], :2], fitted.predict(emb[[0, 2]]), atol=1e-6)
    np.testing.assert_allclose(out[1, [0, 2]], person.predict(emb[1:2])[0], atol=1e-6)
    assert out[1, 1] == 0 and (out[[0, 2], 2] == 0).all()
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, fer):
    """A grouped .npz of real FER images; the groups are made up (image index mod 2), not people."""
    x, y, _, _ = fer
    path = tmp_path_factory.mktemp("fewshot") / "grouped.npz"
    np.savez(path, x=x[:240], y=y[:240], person=np.arange(240) % 2)
    return path


def test_evaluate_fewshot_file_reports_keys(grouped, caplog):
    result = evaluate_fewshot_file(grouped, group_key="person", shots=[1, 2], seeds=2, progress=False)
    assert [row["shots"] for row in result["rows"]] == [1, 2] and result["groups"] == 2
    for row in result["rows"]:
        for key in ("zero_shot_accuracy", "few_shot_accuracy", "prototype_accuracy", "logistic_accuracy",
                    "fit_seconds_median", "n_test", "per_group"):
            assert key in row
        assert row["n_test"] > 100 and 0 <= row["few_shot_accuracy"] <= 1
    assert result["protocol"] == "random" and result["skipped"] == {}
    with pytest.raises(DataFileError, match="no group array 'speaker'"):
        evaluate_fewshot_file(grouped, group_key="speaker", shots=2, progress=False)


def test_evaluate_fewshot_split_tta_and_string_groups(tmp_path, fer):
    x, y, _, _ = fer
    path = tmp_path / "split.npz"
    names = np.array(["ana", "ben"])[np.arange(200) % 2]
    np.savez(path, test_x=x[:200], test_y=y[:200], test_person=names, x=x[:10], y=y[:10], person=np.zeros(10, int))
    result = evaluate_fewshot_file(path, group_key="person", shots=[2], split="test", flip_tta=False, progress=False)
    assert result["split"] == "test" and not result["flip_tta"]
    assert set(result["rows"][0]["per_group"]) == {"ana", "ben"}
    with pytest.raises(DataFileError, match="no 'val_x'"):
        evaluate_fewshot_file(path, group_key="person", shots=[2], split="val", progress=False)


def test_cli_evaluate_fewshot_json(grouped):
    proc = subprocess.run([sys.executable, "-m", "emowidgets", "evaluate", "fewshot", "--data", str(grouped),
                           "--group-key", "person", "--shots", "1", "3", "--no-tta", "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [row["shots"] for row in result["rows"]] == [1, 3] and result["groups"] == 2
    assert result["flip_tta"] is False

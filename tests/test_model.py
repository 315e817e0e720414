"""The Flax model, its weight files, training (tiny config, resume) and the evaluate CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FER, SHARED
from flax import nnx
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from emowidgets.assets import model_path
from emowidgets.autocalib import read_reference
from emowidgets.errors import ModelFileError, OptionsError
from emowidgets.infer import PRIOR_KEY, ClassifierOptions, EmotionClassifier
from emowidgets.model import EmotionNet, ModelConfig, load_model, save_model
from emowidgets.modelfile import load_folded
from emowidgets.tools.cli import main as cli
from emowidgets.tools.evaluation import lesson_yardstick
from emowidgets.tools.train import TrainConfig, train
from emowidgets.vocab import EMOTIONS


def test_shapes():
    net = EmotionNet(ModelConfig(widths=(8, 16), convs=1), rngs=nnx.Rngs(0))
    net.eval()
    x = jnp.zeros((3, 48, 48))
    assert net.embed(x).shape == (3, 16)
    assert net(x).shape == (3, 7)


def test_shipped_weights_load():
    for name in ("main", "fast"):
        _, meta = load_model(model_path(name))
        assert {"config", "backbone_id", "best_val"} <= set(meta)
        assert model_path(name).stat().st_size < 20 * 1024 * 1024


@pytest.fixture(scope="module")
def fer_crops() -> np.ndarray:
    with np.load(FER) as data:
        return data["val_x"][:40].astype(np.float32) / 255


def test_folded_net_matches_eval_model(fer_crops):
    net, _ = load_model(model_path("main"))
    folded = net.fold()
    x = jnp.asarray(fer_crops)
    np.testing.assert_allclose(folded.embed(x), net.embed(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(folded.classify(folded.embed(x)), net(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model, flips", [("main", True), ("fast", False)])
def test_classifier_flip_tta(fer_crops, model, flips):
    """The compiled classifier = the nnx model, averaged with the mirror image where TTA is on."""
    clf = EmotionClassifier.create_from_options(ClassifierOptions(model=model, prior_correction=False))
    assert clf.flip_tta is flips
    net, _ = load_model(model_path(model))
    x = jnp.asarray(fer_crops)
    emb = net.embed(x)
    if flips:
        emb = (emb + net.embed(x[:, :, ::-1])) / 2
    out = clf.classify(fer_crops)
    np.testing.assert_allclose(out.embeddings, emb, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.probs, jax.nn.softmax(net.classify(emb)), atol=1e-5)
    np.testing.assert_allclose(clf.classify(fer_crops[:7]).probs, out.probs[:7], atol=1e-5)  # padding-independent


def test_prior_correction_on_unseen_people():
    """The shipped prior correction shifts the logits by exactly the stored offset and, on people.npz
    (people the model never saw), calls fewer faces neutral and more of them right."""
    with np.load(SHARED / "data" / "people.npz") as d:
        x, y = d["x"].astype(np.float32) / 255, d["y"]
    on = EmotionClassifier.create_from_options()
    off = EmotionClassifier.create_from_options(ClassifierOptions(prior_correction=False))
    assert on.prior_correction and not off.prior_correction
    p_on, p_off = on.classify(x).probs, off.classify(x).probs
    shift = np.log(p_on) - np.log(p_off)
    adjustment = np.asarray(json.loads(on.metadata[PRIOR_KEY]))
    np.testing.assert_allclose(shift - shift[:, :1], (adjustment - adjustment[0])[None].repeat(len(x), 0), atol=2e-3)
    neutral = 6
    assert (p_on.argmax(1) == neutral).mean() < (p_off.argmax(1) == neutral).mean() - 0.04
    assert (p_on.argmax(1) == y).mean() > (p_off.argmax(1) == y).mean() + 0.03


def test_malformed_prior_correction(tmp_path):
    path = model_path("fast")
    with safe_open(str(path), framework="numpy") as f:
        meta = dict(f.metadata() or {})
    for bad, message in [("[1, 2]", "7 finite numbers"), ("not json", "not a JSON list"),
                         (json.dumps([float("nan")] * 7), "7 finite numbers")]:
        save_file(load_file(str(path)), str(tmp_path / "w.safetensors"), metadata={**meta, PRIOR_KEY: bad})
        with pytest.raises(ModelFileError, match=message):
            EmotionClassifier.create_from_options(ClassifierOptions(model=str(tmp_path / "w.safetensors")))


def test_save_load_round_trip(tmp_path):
    net = EmotionNet(ModelConfig(widths=(8, 16), convs=1), rngs=nnx.Rngs(1))
    net.eval()
    save_model(net, tmp_path / "m.safetensors", note="x")
    again, meta = load_model(tmp_path / "m.safetensors")
    x = jnp.asarray(np.random.default_rng(0).random((2, 48, 48), np.float32))
    np.testing.assert_allclose(net(x), again(x), atol=1e-6)
    assert meta["note"] == "x"


@pytest.fixture
def weights(tmp_path):
    net = EmotionNet(ModelConfig(widths=(8, 16), convs=1), rngs=nnx.Rngs(0))
    path = tmp_path / "w.safetensors"
    save_model(net, path)
    return path


@pytest.mark.parametrize("load", [load_model, load_folded], ids=["nnx", "folded"])
def test_bad_weight_files(tmp_path, weights, load):
    arrays = load_file(str(weights))
    with safe_open(str(weights), framework="numpy") as f:
        header_meta = f.metadata()
    cases = {}
    nan = dict(arrays)
    nan["head/kernel"] = np.full_like(nan["head/kernel"], np.nan)
    save_file(nan, str(tmp_path / "nan.safetensors"), metadata=header_meta)
    cases["nan"] = (tmp_path / "nan.safetensors", "NaN")
    shape = dict(arrays)
    shape["head/kernel"] = np.zeros((3, 3), np.float32)
    save_file(shape, str(tmp_path / "shape.safetensors"), metadata=header_meta)
    cases["shape"] = (tmp_path / "shape.safetensors", "shape")
    other = dict(header_meta, config=ModelConfig(widths=(16, 32), convs=1).to_json())
    save_file(arrays, str(tmp_path / "other.safetensors"), metadata=other)
    cases["other backbone"] = (tmp_path / "other.safetensors", "shape")
    save_file(arrays, str(tmp_path / "nometa.safetensors"))
    cases["no config"] = (tmp_path / "nometa.safetensors", "config")
    (tmp_path / "trunc.safetensors").write_bytes(weights.read_bytes()[:-100])
    cases["truncated"] = (tmp_path / "trunc.safetensors", "not a readable")
    (tmp_path / "pickle.pkl").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    cases["pickle"] = (tmp_path / "pickle.pkl", "not a readable")
    big = tmp_path / "big.safetensors"
    with big.open("wb") as f:
        f.truncate(65 * 1024 * 1024)
    cases["oversized"] = (big, "limit")
    cases["missing"] = (tmp_path / "nope.safetensors", "not found")
    for path, message in cases.values():
        with pytest.raises(ModelFileError, match=message):
            load(path)


def test_tiny_training_resumes(tmp_path):
    cfg = TrainConfig.load("tiny")
    run = tmp_path / "run"
    first = train(cfg, FER, run_dir=run, progress=False)
    assert first["epochs"] == 2 and 0.0 < first["best_val"] <= 1.0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    # a second call finds the finished checkpoint: it resumes and trains no further epoch
    second = train(cfg, FER, run_dir=run, export=tmp_path / "w.safetensors", progress=False)
    assert second["best_val"] == first["best_val"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    _, meta = load_model(tmp_path / "w.safetensors")
    assert meta["name"] == "tiny"
    # the export carries its neutral reference, so live() auto-calibrates with it by default
    net = EmotionClassifier.create_from_options(ClassifierOptions(model=str(tmp_path / "w.safetensors")))
    assert read_reference(net.metadata, net.embed_dim).shape == (net.embed_dim,)
    with pytest.raises(OptionsError, match="known"):
        TrainConfig.load("no-such-config")


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    """Stopped after its first epoch, a run resumed from its checkpoint (every leaf of the training state stored
    by name: weights, batch statistics, optimizer with its step count and learning rate, EMA) ends with the
    weights of the same run left alone."""
    cfg = TrainConfig.load("tiny")
    straight = train(cfg, FER, run_dir=tmp_path / "straight", progress=False)

    def stop(_record: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, FER, run_dir=tmp_path / "cut", progress=False, on_epoch=stop)
    arrays = load_file(tmp_path / "cut" / "checkpoint.safetensors")
    named = {"params/backbone/stages/0/0/conv/kernel/value", "optimizer/1/count",
             "optimizer/1/hyperparams/learning_rate"}
    assert named <= arrays.keys()
    resumed = train(cfg, FER, run_dir=tmp_path / "cut", progress=False)
    assert resumed["best_val"] == straight["best_val"] and resumed["epochs"] == straight["epochs"]
    a, b = (load_file(tmp_path / name / "checkpoint.safetensors") for name in ("straight", "cut"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_evaluate_cli_json(tmp_path, capsys):
    data = np.load(FER)
    np.savez(tmp_path / "small.npz", x=data["test_x"][:64], y=data["test_y"][:64])
    assert cli(["evaluate", "--data", str(tmp_path / "small.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) >= {"n", "accuracy", "per_class_recall", "neutral_to_negative", "negative_hit", "confusion",
                           "misses", "ms_per_face"}
    assert result["n"] == 64 and result["accuracy"] > 0.4
    assert sum(map(sum, result["confusion"])) == 64
    assert 0.0 <= result["neutral_to_negative"] < 0.6


def test_lesson_yardstick_counts_neutral_faces_called_negative():
    neutral, sad, happy, angry = (EMOTIONS.index(e) for e in ("neutral", "sad", "happy", "angry"))
    y = np.array([neutral, neutral, neutral, neutral, sad, angry, happy])
    pred = np.array([neutral, sad, angry, -1, angry, happy, happy])  # -1: no face found
    got = lesson_yardstick(y, pred)
    assert got["neutral_to_negative"] == 0.5  # 2 of 4 neutral faces called sad or angry
    assert got["negative_hit"] == 0.5  # sad -> angry counts as a hit, angry -> happy does not
    assert got["confusion"][neutral][sad] == 1 and sum(map(sum, got["confusion"])) == 6
    assert lesson_yardstick(np.array([happy]), np.array([happy]))["neutral_to_negative"] is None


def test_evaluate_cli_detect(tmp_path, capsys):
    data = np.load(FER)
    np.savez(tmp_path / "small.npz", test_x=data["test_x"][:24], test_y=data["test_y"][:24])
    assert cli(["evaluate", "--data", str(tmp_path / "small.npz"), "--split", "test", "--detect", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 24 and result["misses"] <= 3



def test_evaluate_detect_searches_the_image_as_the_live_path_does():
    """FER2013 test faces that a bordered search misses are found when the image is searched as it is (issue 23)."""
    from PIL import Image

    from emowidgets.detect import DetectorOptions, FaceDetector
    from emowidgets.tools.evaluation import DETECT_MIN_SIDE, detect_largest_crop

    images = np.load(FER)["test_x"][:200]
    with FaceDetector.create_from_options(DetectorOptions(model="short")) as detector:
        bordered_misses = []
        for i, img in enumerate(images):
            big = np.asarray(Image.fromarray(img).resize((DETECT_MIN_SIDE,) * 2, Image.Resampling.BILINEAR))
            bordered = np.pad(big, DETECT_MIN_SIDE // 4, mode="edge")
            if len(detector.detect(np.repeat(bordered[:, :, None], 3, axis=2))) == 0:
                bordered_misses.append(i)
        found = [i for i in bordered_misses if detect_largest_crop(detector, images[i]) is not None]
    assert bordered_misses, "expected some faces the bordered search cannot find in 200 FER2013 test images"
    assert len(found) >= 2, f"of {bordered_misses} (missed with a border) only {found} found plainly"

@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((4, 48, 48), np.uint8), "y": np.array([0, 1, 7, 2])}, "outside 0-6"),
    ({"x": np.zeros((4, 48, 48), np.float32), "y": np.zeros(4, int)}, "uint8"),
    ({"x": np.zeros((4, 48, 48), np.uint8), "y": np.zeros(3, int)}, "vector of 4"),
    ({"images": np.zeros((4, 48, 48), np.uint8)}, "no 'x'"),
], ids=["label-7", "float-images", "length-mismatch", "missing-keys"])
def test_evaluate_cli_bad_data(tmp_path, capsys, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    assert cli(["evaluate", "--data", str(tmp_path / "bad.npz")]) == 3  # a bad data file (see cli.EXIT_CODES)
    assert message in capsys.readouterr().err


def test_evaluate_cli_not_npz(tmp_path, capsys):
    (tmp_path / "x.npz").write_text("hello")
    assert cli(["evaluate", "--data", str(tmp_path / "x.npz")]) == 3
    assert "not a readable .npz" in capsys.readouterr().err

"""Cold start: the flax-free weight loading and JAX's persistent compilation cache
(each cache case in a fresh interpreter: JAX sets its cache up once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import IMAGES
from flax import nnx

from emowidgets import jaxcache
from emowidgets.assets import model_path
from emowidgets.detect import FaceDetector
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.model import EmotionNet, ModelConfig, _flatten, load_model
from emowidgets.modelfile import load_folded
from emowidgets.pipeline import Pipeline, PipelineOptions

PHOTO = IMAGES / "group_5_people.jpg"

# One classification of PHOTO in a new interpreter: its probabilities and JAX's cache events.
CLASSIFY = """
import collections, json, sys
import jax.monitoring
events = collections.Counter()
jax.monitoring.register_event_listener(lambda name, **kw: events.update([name.rsplit("/", 1)[-1]]))
from emowidgets.pipeline import Pipeline
with Pipeline.create_from_options(warmup=False) as p:
    result = p.process_image(open(sys.argv[1], "rb").read())
print(json.dumps({"probs": result.probs.tolist(), "hits": events["cache_hits"], "misses": events["cache_misses"],
                  "flax": "flax" in sys.modules}))
"""


def classify_in_new_process(cache: str) -> tuple[dict, str]:
    env = dict(os.environ, EMOWIDGETS_CACHE_DIR=cache)
    done = subprocess.run([sys.executable, "-c", CLASSIFY, str(PHOTO)], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(scope="module")
def reference_probs():
    """PHOTO through the Flax path (nnx model built, then folded), as before the flax-free loader."""
    net, meta = load_model(model_path("main"))
    with Pipeline(FaceDetector.create_from_options(), EmotionClassifier(net, ClassifierOptions(), meta),
                  PipelineOptions()) as p:
        probs = p.process_image(PHOTO.read_bytes()).probs
    assert len(probs) >= 2  # the short-range detector finds 3 of the 5 faces
    return probs


@pytest.mark.parametrize("config", [ModelConfig(), ModelConfig(widths=(8, 16, 24), convs=1, num_classes=5)],
                         ids=["main", "tiny"])
def test_array_shapes_match_the_nnx_model(config):
    state = nnx.state(nnx.eval_shape(lambda: EmotionNet(config, rngs=nnx.Rngs(0))), (nnx.Param, nnx.BatchStat))
    shapes = {name: tuple(v.shape) for name, v in _flatten(nnx.to_pure_dict(state)).items()}
    assert shapes == config.array_shapes()


@pytest.mark.parametrize("model", ["main", "fast"])
def test_folded_load_equals_folding_the_nnx_model(model):
    direct, meta = load_folded(model_path(model))
    net, nnx_meta = load_model(model_path(model))
    via_nnx = net.fold()
    assert meta == nnx_meta and direct.config == via_nnx.config
    leaves = jax.tree_util.tree_leaves((direct.stages, direct.head_kernel, direct.head_bias))
    expected = jax.tree_util.tree_leaves((via_nnx.stages, via_nnx.head_kernel, via_nnx.head_bias))
    assert len(leaves) == len(expected) == 2 * len(net.config.widths) * net.config.convs + 2
    for got, want in zip(leaves, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert direct.fold() is direct


def test_cache_dir_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("EMOWIDGETS_CACHE_DIR", str(tmp_path))
    assert jaxcache.cache_dir() == tmp_path / "jax"
    for off in ("off", "OFF", "0", "false", "none"):
        monkeypatch.setenv("EMOWIDGETS_CACHE_DIR", off)
        assert jaxcache.cache_dir() is None
    monkeypatch.delenv("EMOWIDGETS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jaxcache.cache_dir() == tmp_path / "emowidgets" / "jax"


@pytest.mark.slow
def test_compilation_cache_is_filled_then_hit_with_the_same_results_even_when_broken(tmp_path, reference_probs):
    first, _ = classify_in_new_process(str(tmp_path))
    entries = sorted(p.name for p in (tmp_path / "jax").iterdir())
    assert first["misses"] >= 1 and first["hits"] == 0
    assert any(name.startswith("jit_predict-") for name in entries)
    second, _ = classify_in_new_process(str(tmp_path))
    assert second["hits"] >= 1 and second["misses"] == 0  # every compile of the first run came from disk
    assert sorted(p.name for p in (tmp_path / "jax").iterdir()) == entries
    for name in entries:  # as a process killed while writing would leave them
        if name.startswith("jit_predict-"):
            entry = tmp_path / "jax" / name
            entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    broken, stderr = classify_in_new_process(str(tmp_path))
    assert broken["misses"] >= 1 and "Error reading persistent compilation cache entry" in stderr
    off, _ = classify_in_new_process("off")
    assert off["hits"] == off["misses"] == 0
    for run in (first, second, broken, off):
        assert not run["flax"]
        np.testing.assert_allclose(run["probs"], reference_probs, atol=1e-5)


@pytest.mark.slow
def test_unwritable_cache_dir_warns_once_and_classifies(tmp_path, reference_probs):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run, stderr = classify_in_new_process(str(blocker / "cache"))  # mkdir fails, even for root
    assert stderr.count("emowidgets: no compilation cache") == 1
    assert run["hits"] == run["misses"] == 0
    np.testing.assert_allclose(run["probs"], reference_probs, atol=1e-5)


# A script that makes a pipeline (background warm-up on, the default) and ends at once; an exit handler registered
# before emowidgets' own runs after it and reports how far the warm-up got.
EXIT_EARLY = """
import atexit, json
state = {}
atexit.register(lambda: print(json.dumps({"compiled": state["p"].classifier.compile_count,
                                          "alive": state["p"].classifier.warming_up}), flush=True))
import emowidgets
state["p"] = emowidgets.Pipeline.create_from_options()
"""


def test_a_script_exits_without_compiling_the_remaining_buckets():
    done = subprocess.run([sys.executable, "-c", EXIT_EARLY], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    every = 2 * len(ClassifierOptions().buckets)  # with and without flip TTA (main model)
    assert not report["alive"]  # the exit waited for the compile in progress, so XLA was not cut off mid-way
    assert 1 <= report["compiled"] < every, report

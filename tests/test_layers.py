"""The layout: a numpy-only vocabulary at the bottom, MediaPipe only in ``detect``, offline tools that speak
about results (class log, report, CLI) without the runtime stack, and an ``__all__`` checked both ways."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys

from conftest import CLIPS, ROOT, video_frames

import emowidgets
from emowidgets import errors
from emowidgets.classlog import ClassLog
from emowidgets.pipeline import Pipeline

PACKAGE = ROOT / "emowidgets"
HEAVY = ("jax", "flax", "cv2", "scipy", "mediapipe", "ipywidgets", "anywidget")


def imported(module: str) -> set[str]:
    """Top-level modules ``module`` imports at module level (``emowidgets.x`` kept whole)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name if a.name.startswith("emowidgets") else a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module if node.module.startswith("emowidgets") else node.module.split(".")[0])
    return names


def heavy_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(__import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_vocabulary_layer_imports_nothing_heavy():
    for module in ("vocab", "boxes", "errors"):
        assert imported(module) <= {"__future__", "dataclasses", "typing", "numpy"}, module
    assert heavy_after("import emowidgets.vocab, emowidgets.boxes, emowidgets.errors") == []


def test_only_detect_imports_mediapipe():
    importers = {p.stem for p in PACKAGE.glob("*.py") if "mediapipe" in p.read_text()
                 and any(isinstance(n, ast.Import | ast.ImportFrom) and "mediapipe" in ast.dump(n)
                         for n in ast.walk(ast.parse(p.read_text())))}
    assert importers == {"detect"}
    leaves = {"emowidgets.boxes", "emowidgets.decode", "emowidgets.errors", "emowidgets.assets", "emowidgets.nativelog"}
    assert {m for m in imported("detect") if m.startswith("emowidgets")} <= leaves  # no pipeline stage above it
    for module in ("assets", "nativelog"):  # file locations and native log capture: standard library only
        assert {m for m in imported(module) if m.startswith("emowidgets")} <= {"emowidgets.errors"}, module
    assert heavy_after("import emowidgets.assets, emowidgets.nativelog") == []


def test_report_runs_without_the_runtime_stack(tmp_path, pipeline: Pipeline):
    log = tmp_path / "class.parquet"
    with ClassLog(log) as writer:
        for i, frame in enumerate(video_frames(CLIPS / "multi_face.mp4", every=50)):
            result = pipeline.process_array(frame, seq=i, timestamp_ms=i * 2000)
            writer.log(result, time_ms=1_700_000_000_000 + i * 2000)
    code = f"from emowidgets.tools.cli import main\nassert main(['report', {str(log)!r}]) == 0"
    assert heavy_after(code) == []
    assert log.with_suffix(".html").is_file()
    assert heavy_after("import emowidgets.classlog, emowidgets.tools.report, emowidgets.tools.cli") == []


def test_all_is_checked_both_ways():
    exported = set(emowidgets.__all__) - {"__version__"}
    assert exported == set(emowidgets._EXPORTS)  # nothing listed that does not load, nothing loadable unlisted
    leaves = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert leaves <= exported  # every error a caller may catch is importable from the package
    for name, module in emowidgets._EXPORTS.items():
        assert hasattr(importlib.import_module(module), name), (name, module)


def test_runtime_never_imports_the_offline_tools():
    """The live path stays apart from training/evaluation: only ``emowidgets/__init__`` names one tool
    (``evaluate``, loaded lazily on first use), and no runtime module imports ``emowidgets.tools``."""
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("__init__", "__main__"):
            continue
        assert not any(m.startswith("emowidgets.tools") for m in imported(path.stem)), path.stem
    assert heavy_after("import emowidgets.tools") == []


def test_live_path_imports_neither_flax_nor_scipy():
    """Inference reads weights without Flax (``emowidgets.modelfile``) and SciPy loads on first use: 0.8 s of
    a cold start on 2 cores. MediaPipe loads with the first detector."""
    assert heavy_after("import emowidgets.pipeline, emowidgets.liveview") == ["jax", "cv2", "ipywidgets",
                                                                              "anywidget"]
    for module in ("modelfile", "jaxcache", "infer", "autocalib", "tracking"):
        assert "flax" not in imported(module) and "scipy" not in imported(module), module


def test_a_fitted_adapter_is_used_with_numpy_alone():
    """Fitting (nnx, optax) lives in ``adapter_fit``; using and loading an adapter needs neither JAX nor Flax."""
    assert heavy_after("import emowidgets.adapter") == []
    assert "flax" not in heavy_after("import emowidgets.adapter_io")
    assert {"flax", "optax", "jax"} & imported("adapter_fit") == {"flax", "optax", "jax"}


def test_the_view_knows_neither_the_pipeline_nor_the_wiring():
    """``classview`` is the page alone; ``lesson`` wires source, pipeline, adapters and view. No import runs back
    up: the class adapters hear names and report labels through a callback (before: they wrote the view's traits,
    a circle with ``classview``), and the model file reader folds arrays only (before: a circle with ``model``)."""
    runtime = {"emowidgets.pipeline", "emowidgets.session", "emowidgets.classadapters", "emowidgets.lesson",
               "emowidgets.calibration", "emowidgets.sources"}
    assert not imported("classview") & runtime
    assert "emowidgets.classview" not in imported("classadapters")
    assert {"emowidgets.classview", "emowidgets.classadapters", "emowidgets.pipeline"} <= imported("lesson")
    for module in ("classadapters", "modelfile"):
        source = (PACKAGE / f"{module}.py").read_text()
        assert "TYPE_CHECKING" not in source, module


def test_the_worker_knows_no_stage():
    """``worker`` (listeners, drop-oldest queue, thread) is handed the per-frame processing as a function: it
    imports no stage, neither the model nor MediaPipe, and loads nothing heavy; ``pipeline`` owns one."""
    assert {m for m in imported("worker") if m.startswith("emowidgets")} <= {"emowidgets.errors", "emowidgets.vocab"}
    assert heavy_after("import emowidgets.worker") == []
    assert "emowidgets.worker" in imported("pipeline")


def test_the_gallery_knows_neither_detector_nor_model():
    """``gallery`` (the call's tile grid over a stream, and its tiles' names) finds grids and reads names only: the
    pipeline searches the tiles for faces."""
    assert {m for m in imported("gallery") if m.startswith("emowidgets")} <= {"emowidgets.layout", "emowidgets.names"}
    assert not {"jax", "mediapipe"} & set(heavy_after("import emowidgets.gallery"))

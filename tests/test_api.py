"""The public API: a short, checked ``__all__``; importing the package is cheap (the heavy stack loads lazily)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import emowidgets


def test_exports_resolve():
    for name in emowidgets.__all__:  # each export is the very object its module defines, not a stand-in
        value = getattr(emowidgets, name)
        if name == "__version__":
            assert isinstance(value, str) and value[0].isdigit(), value
        else:
            assert value is getattr(importlib.import_module(emowidgets._EXPORTS[name]), name), name
    assert sorted(emowidgets.__all__) == sorted(dir(emowidgets))


def test_import_is_lazy():
    code = "import sys, emowidgets; print('jax' in sys.modules, 'mediapipe' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "emowidgets", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "evaluate", "report"):
        assert command in out.stdout


def test_evaluate_stays_the_function_after_submodule_imports():
    """``emowidgets.evaluate`` is the exported function even once the CLI's modules are imported."""
    import emowidgets
    import emowidgets.tools.cli
    import emowidgets.tools.fewshot  # imports the evaluation module

    assert callable(emowidgets.evaluate)


def test_readme_still_image_example_and_the_preset_for_a_group_photo():
    """The README's photo example as written finds the 3 nearer faces of the group photo; the gallery preset it
    names for small or many faces finds all 5."""
    from conftest import IMAGES

    from emowidgets.sources import pipeline_options

    photo = str(IMAGES / "group_5_people.jpg")
    with emowidgets.Pipeline.create_from_options(warmup=False) as p:
        assert len(p.process_image(photo).boxes) == 3
    with emowidgets.Pipeline.create_from_options(pipeline_options("gallery"), warmup=False) as p:
        result = p.process_image(photo)
    assert len(result.boxes) == 5 and len(result.dominant) == 5

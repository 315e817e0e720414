"""The standing bad-input suite of issue 26 (defects 5-7): one real file or frame per defect. A new reader or writer
of a file adds its bad files here: each must end in an ``EmowidgetsError`` leaf naming the file (or an ``OSError``
for a writer), never a raw error, a wrong answer or a crash."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from conftest import IMAGES, ROOT, SHARED, can_mount_tmpfs
from PIL import Image
from safetensors.numpy import load_file, save_file

from emowidgets.adapter import Adapter, BaseHead
from emowidgets.adapter_fit import fit_adapter
from emowidgets.adapter_io import load_adapter, save_adapter
from emowidgets.assets import DETECTOR_FILES, MODEL_FILES, WEIGHTS_ENV, detector_path, model_path
from emowidgets.classadapters import INDEX, ClassAdapters
from emowidgets.classlog import ClassLog
from emowidgets.detect import DetectorOptions, FaceDetector
from emowidgets.errors import FrameError, ModelFileError
from emowidgets.modelfile import read_model_file, update_metadata
from emowidgets.pipeline import Pipeline
from emowidgets.tools.cli import exit_code
from emowidgets.tools.cli import main as cli

SMILE = IMAGES / "single_man_smiling.jpg"
HERE = Path(__file__).resolve().parent


# -- photos: orientation and input types ------------------------------------------------------------------------
def test_exif_orientation_is_applied_to_a_rotated_phone_photo(pipeline: Pipeline):
    upright = pipeline.process_image(SMILE.read_bytes())
    buf = io.BytesIO()
    with Image.open(SMILE) as img:
        exif = img.getexif()
        exif[0x0112] = 3  # "rotate 180° to view": how a phone stores a photo taken upside down
        img.rotate(180).save(buf, "JPEG", quality=95, exif=exif)
    rotated = pipeline.process_image(buf.getvalue())
    assert upright.dominant == rotated.dominant == ["happy"]  # before: "sad" read off the upside-down face
    np.testing.assert_allclose(rotated.probs, upright.probs, atol=0.05)


def test_paths_and_pil_images_are_photos_and_other_types_are_named(pipeline: Pipeline, tmp_path):
    ref = pipeline.process_image(SMILE.read_bytes()).probs
    with Image.open(SMILE) as img:
        for photo in (SMILE, str(SMILE), img):
            np.testing.assert_allclose(pipeline.process_image(photo).probs, ref, atol=1e-4)
    for bad, name in ((None, "NoneType"), ([1, 2], "list"), (3.5, "float")):
        with pytest.raises(FrameError, match=f"not {name}"):
            pipeline.process_image(bad)
        with pytest.raises(FrameError, match=f"not {name}"):
            pipeline.process_bytes(bad)
    with pytest.raises(FrameError, match="not str"):
        pipeline.process_bytes(str(SMILE))
    with pytest.raises(FrameError, match="cannot read photo"):
        pipeline.process_image(tmp_path / "missing.jpg")


def test_a_huge_array_is_refused_before_any_conversion():
    """Peak memory of refusing 10000 x 10000 arrays, measured in a child process (RSS and traced allocations):
    before, the float32 copy of a uint16 array was +2,289 MB and 11 s, and an array of a shape no frame has was
    converted (+763 MB) before its shape was refused."""
    run = subprocess.run([sys.executable, str(HERE / "huge_array.py")], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["float32"]["error"] == seen["uint16"]["error"] == (
        "frame is 10000x10000, over the 16777216-pixel limit; send a smaller frame")
    assert seen["float32 4-D"]["error"] == "frame shape (10000, 10000, 1, 1) is not (H, W), (H, W, 3) or (H, W, 4)"
    for name, cost in seen.items():
        assert cost["rss_mb"] < 10 and cost["traced_mb"] < 1, (name, cost)  # the array alone is 200-400 MB


# -- model files --------------------------------------------------------------------------------------------------
def copy_model(tmp_path, name="m.safetensors"):
    path = tmp_path / name
    path.write_bytes(model_path("fast").read_bytes())
    return path


@pytest.mark.parametrize(("config", "match"), [("[" * 100_000 + "]" * 100_000, "broken model config"),
                                               (json.dumps({"widths": [], "convs": 2}), "broken model config")])
def test_a_broken_model_config_names_the_file(tmp_path, config, match):
    path = copy_model(tmp_path)
    update_metadata(path, config=config)  # before: RecursionError, IndexError
    with pytest.raises(ModelFileError, match=f"{path}.*{match}|{match}"):
        read_model_file(path)


@pytest.mark.parametrize(("dtype", "stored"), [(np.float16, "F16"), (ml_dtypes.float8_e4m3fn, "F8_E4M3")])
def test_a_model_tensor_of_another_dtype_names_the_file(tmp_path, dtype, stored):
    path = copy_model(tmp_path)
    arrays = load_file(str(path))
    arrays["head/bias"] = arrays["head/bias"].astype(dtype)
    _, _, meta = read_model_file(model_path("fast"))
    save_file(arrays, str(path), metadata=meta)  # a real safetensors file; F8: numpy cannot even hold it
    with pytest.raises(ModelFileError, match=f"{path}: head/bias is stored as {stored}, expected F32"):
        read_model_file(path)  # before: F8 gave AttributeError (module 'numpy' has no attribute 'float8_e4m3fn')


def damaged_detector(path: Path, damage: str) -> Path:
    """Write the short-range detector to ``path``, damaged: ``empty``, cut to ``100 bytes`` or ``half``, or its
    ``header`` (first 64 bytes) zeroed; returns ``path``."""
    raw = detector_path("short").read_bytes()
    path.write_bytes({"empty": b"", "100 bytes": raw[:100], "half": raw[: len(raw) // 2],
                      "header": bytes(64) + raw[64:]}[damage])
    return path


@pytest.mark.parametrize("damage", ["empty", "100 bytes", "half", "header"])
def test_an_empty_truncated_or_corrupt_detector_file_is_a_model_file_error(tmp_path, damage):
    path = damaged_detector(tmp_path / "face.tflite", damage)
    with pytest.raises(ModelFileError, match=f"{path}"):  # before: ValueError/RuntimeError without the name
        FaceDetector(DetectorOptions(), path)


@pytest.mark.parametrize("damage", ["empty", "half", "header"])
def test_the_cli_exits_4_on_a_broken_detector_file_without_a_traceback(tmp_path, damage):
    """``evaluate --detect`` with ``$EMOWIDGETS_WEIGHTS`` naming a folder whose short-range detector is broken
    (before: exit 1 and a ``ValueError``/``RuntimeError`` traceback without the file's name)."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in (MODEL_FILES["fast"], DETECTOR_FILES["full"]):
        (weights / name).symlink_to(model_path("fast").parent / name)
    broken = damaged_detector(weights / DETECTOR_FILES["short"], damage)
    with np.load(SHARED / "data" / "people.npz") as data:
        np.savez(tmp_path / "four.npz", x=data["x"][:4], y=data["y"][:4])
    run = subprocess.run([sys.executable, "-m", "emowidgets", "evaluate", "--data", str(tmp_path / "four.npz"),
                          "--detect", "--model", "fast", "--json"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, WEIGHTS_ENV: str(weights)})
    assert run.returncode == 4, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.splitlines()[-1].startswith(f"emowidgets: error: face detector model {broken} cannot be "
                                                  "loaded (missing, empty or corrupt")


# -- adapters and their index ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def module_pipeline():
    """One pipeline for this module's fixtures (the conftest one is fresh per test)."""
    with Pipeline.create_from_options(warmup=False) as p:
        yield p


@pytest.fixture(scope="module")
def adapter(module_pipeline: Pipeline):
    pipeline = module_pipeline
    with np.load(SHARED / "data" / "people.npz") as data:
        x, y = data["x"][:40].astype(np.float32) / 255, data["y"][:40]
    clf = pipeline.classifier
    fitted, _ = fit_adapter(clf.classify(x).embeddings, (y == 3).astype(np.int64), ("other", "smile"),
                            base=BaseHead.from_classifier(clf), backbone_id=clf.backbone_id)
    return fitted


def test_an_adapter_with_scale_zero_is_neither_saved_nor_loaded(adapter, tmp_path, pipeline: Pipeline):
    good = tmp_path / "good.safetensors"
    save_adapter(adapter, good)
    arrays = load_file(str(good))
    from safetensors import safe_open

    with safe_open(str(good), framework="numpy") as f:
        meta = f.metadata()
    for key, value in (("scale", np.zeros(1, np.float32)), ("kernel", np.zeros_like(arrays["kernel"]))):
        bad = tmp_path / f"{key}.safetensors"
        save_file({**arrays, key: value, **({"mix": np.zeros_like(arrays["mix"])} if key == "kernel" else {})},
                  str(bad), metadata=meta)
        with pytest.raises(ModelFileError, match=f"{bad}: its scale is not positive or its kernels are all zero"):
            load_adapter(bad, pipeline.classifier.backbone_id)  # before: loaded, NaN or equal scores
    for dtype, stored in ((np.int32, "I32"), (np.uint8, "U8"), (np.bool_, "BOOL"), (np.complex64, "C64"),
                          (ml_dtypes.float8_e5m2, "F8_E5M2")):
        other = tmp_path / f"{stored}.safetensors"
        save_file({**arrays, "bias": arrays["bias"].astype(dtype)}, str(other), metadata=meta)
        with pytest.raises(ModelFileError, match=f"{other}: bias is stored as {stored}, expected F32"):
            load_adapter(other, pipeline.classifier.backbone_id)
    zero = Adapter({**adapter.arrays, "scale": np.zeros(1, np.float32)}, adapter.labels, adapter.backbone_id,
                   adapter.shots, adapter.created, adapter.mode)
    with pytest.raises(ModelFileError, match="scale is not positive"):
        save_adapter(zero, tmp_path / "zero.safetensors")
    assert not (tmp_path / "zero.safetensors").exists()


def test_infinite_header_offsets_or_shots_name_the_file(adapter, tmp_path, pipeline: Pipeline):
    good = tmp_path / "good.safetensors"
    save_adapter(adapter, good)
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    for label, edit in (("offsets", lambda h: h["bias"].__setitem__("data_offsets", [0, 1e999])),
                        ("shots", lambda h: h["__metadata__"].__setitem__("shots", '{"smile": 1e999}'))):
        h = json.loads(json.dumps(header))
        edit(h)
        text = json.dumps(h).encode()  # Infinity: what Python's json writes for 1e999
        bad = tmp_path / f"{label}.safetensors"
        bad.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
        with pytest.raises(ModelFileError, match=str(bad)):  # before: OverflowError
            load_adapter(bad, pipeline.classifier.backbone_id)


def test_nested_json_in_an_adapter_header_or_its_labels_names_the_file(adapter, tmp_path, pipeline: Pipeline):
    good = tmp_path / "good.safetensors"
    save_adapter(adapter, good)
    from safetensors import safe_open

    with safe_open(str(good), framework="numpy") as f:
        meta = f.metadata()
    labels = tmp_path / "labels.safetensors"
    save_file(load_file(str(good)), str(labels), metadata={**meta, "labels": "[" * 100_000 + "]" * 100_000})
    header = tmp_path / "header.safetensors"
    text = ("[" * 50_000 + "]" * 50_000).encode()
    header.write_bytes(len(text).to_bytes(8, "little") + text)
    for bad, match in ((labels, "bad metadata"), (header, "unreadable header")):
        with pytest.raises(ModelFileError, match=f"{bad}.*{match}"):  # before: RecursionError
            load_adapter(bad, pipeline.classifier.backbone_id)


def test_saving_an_adapter_where_it_cannot_be_written_is_an_os_error(adapter, tmp_path, module_pipeline: Pipeline):
    (tmp_path / "a_folder").mkdir()
    for target, kind in ((tmp_path / "a_folder", IsADirectoryError), (tmp_path / "missing" / "a.safetensors",
                                                                       FileNotFoundError)):
        with pytest.raises(kind, match=f"cannot write adapter file.*{target}") as caught:  # before: SafetensorError
            save_adapter(adapter, target)
        assert caught.value.filename == str(target) and exit_code(caught.value) == 6  # the CLI's exit code
    assert [p.name for p in tmp_path.rglob("*")] == ["a_folder"]  # no temporary file left
    adapters = ClassAdapters(module_pipeline)
    adapters.set_person("Ana", adapter)
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(FileExistsError, match="a_file") as caught:  # save_adapters into a file
        adapters.save(tmp_path / "a_file")
    assert exit_code(caught.value) == 6


def run_adapter_disk(adapter, tmp_path, mode: str) -> dict:
    """Run ``adapter_disk.py`` (``limit``: in ``tmp_path/disk``; ``mount``: on a 64 kB tmpfs) on a saved copy of
    ``adapter``; its JSON."""
    good = tmp_path / "good.safetensors"
    save_adapter(adapter, good)
    child = [sys.executable, str(HERE / "adapter_disk.py"), mode]
    if mode == "limit":
        (tmp_path / "disk").mkdir()
        command = [*child, str(tmp_path / "disk"), str(good), adapter.backbone_id]
    else:
        command = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && exec "
                   + " ".join([*child, "/mnt", str(good), adapter.backbone_id])]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


def check_refused(seen: dict, folder: str, errno: int, also_left: tuple[str, ...] = ()) -> None:
    """Every save in one ``adapter_disk.py`` case was an ``OSError`` of ``errno`` naming its file (exit code 6),
    the good file is unchanged and no other file is left."""
    for case, target in (("over the old file", "old.safetensors"), ("a new file", "new.safetensors")):
        assert seen[case] == {"raised": "OSError", "errno": errno, "filename": f"{folder}/{target}", "exit": 6,
                              "message": f"[Errno {errno}] cannot write adapter file: {os.strerror(errno)}: "
                                         f"'{folder}/{target}'"}, case
    assert seen["save_adapters"]["errno"] == errno and seen["save_adapters"]["exit"] == 6
    assert seen["save_adapters"]["filename"].startswith(f"{folder}/class")
    assert seen["old file unchanged"]
    assert seen["left"] == sorted(["old.safetensors", *also_left])  # no half-written or temporary file


def test_an_adapter_past_a_file_size_limit_is_an_os_error_and_leaves_the_old_file(adapter, tmp_path):
    """RLIMIT_FSIZE in a child (EFBIG, what a quota or a FAT32 stick gives; before: a ``SafetensorError`` wrapped
    in an ``OSError`` without errno or file name)."""
    seen = run_adapter_disk(adapter, tmp_path, "limit")
    check_refused(seen["file size limit"], str(tmp_path / "disk"), 27, also_left=("class",))


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs user namespaces to mount a small tmpfs")
def test_an_adapter_on_a_full_or_read_only_disk_is_an_os_error_and_leaves_the_old_file(adapter, tmp_path):
    """A 64 kB tmpfs in the child's own mount namespace, filled (ENOSPC), then remounted read-only (EROFS, which
    stops root where ``chmod`` does not)."""
    seen = run_adapter_disk(adapter, tmp_path, "mount")
    check_refused(seen["full disk"], "/mnt", 28, also_left=("class", "filler"))
    check_refused(seen["read-only"], "/mnt", 30)


def test_a_nested_index_and_a_link_out_of_the_folder_are_refused(adapter, tmp_path, pipeline: Pipeline):
    adapters = ClassAdapters(pipeline)
    adapters.set_person("Ana", adapter)
    folder = tmp_path / "class"
    adapters.save(folder)
    (folder / INDEX).write_text("[" * 40_000 + "]" * 40_000)  # 80 kB of nesting
    with pytest.raises(ModelFileError, match="not valid JSON"):  # before: RecursionError
        adapters.load(folder)
    adapters.save(folder)
    outside = tmp_path / "elsewhere.safetensors"
    person = next(folder.glob("person-*.safetensors"))
    person.replace(outside)
    person.symlink_to(outside)
    with pytest.raises(ModelFileError, match="outside the adapter folder"):
        adapters.load(folder)
    adapters.set_room(None)


def test_an_index_too_long_to_load_is_not_saved(adapter, tmp_path, pipeline: Pipeline):
    adapters = ClassAdapters(pipeline)
    for k in range(300):
        adapters.people[f"{k} " + "x" * 1000] = adapter  # 300 kB of names; load refuses an index over 256 kB
    with pytest.raises(ModelFileError, match="could not be loaded back"):
        adapters.save(tmp_path / "class")
    assert not (tmp_path / "class" / INDEX).exists()


# -- the report ---------------------------------------------------------------------------------------------------
def write_log(path, result, names, time_ms=1_700_000_000_000):
    with ClassLog(path) as log:
        for k in range(5):
            log.log(result, names, time_ms=time_ms + 1000 * k)


@pytest.fixture(scope="module")
def result(module_pipeline: Pipeline):
    return module_pipeline.process_image((IMAGES / "group_5_people.jpg").read_bytes())


def test_report_refuses_to_overwrite_its_log_and_refuses_impossible_times(tmp_path, result, capsys):
    log = tmp_path / "lesson.csv"
    write_log(log, result, {})
    before = log.read_bytes()
    assert cli(["report", str(log), "--out", str(log)]) == 2  # before: exit 0, the log replaced by the HTML
    assert log.read_bytes() == before and "is the class log itself" in capsys.readouterr().err
    future = tmp_path / "future.csv"
    write_log(future, result, {}, time_ms=10**15)
    assert cli(["report", str(future)]) == 3  # before: "year ... is out of range" traceback
    assert "outside 1970-9999" in capsys.readouterr().err


def test_report_draws_dollar_names_as_text(tmp_path, result):
    log = tmp_path / "lesson.csv"
    write_log(log, result, {0: "$x^$"})  # before: matplotlib ParseSyntaxException
    from emowidgets.tools.report import write_report

    page = write_report(log).read_text()
    assert "$x^$" in page

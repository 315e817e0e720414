"""One exception tree: each defect the bad-input probe found, reproduced with a real file or frame, now raises an
``EmowidgetsError`` leaf with its cause chained, and the CLI turns it into one line and an exit code."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from conftest import CLIPS, IMAGES, SHARED, video_frames
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from emowidgets import errors
from emowidgets.adapter import AdapterSet, BaseHead
from emowidgets.adapter_fit import fit_adapter
from emowidgets.assets import model_path
from emowidgets.classlog import ClassLog, read_log
from emowidgets.decode import decode
from emowidgets.errors import (
    AdapterError,
    ClosedError,
    DataFileError,
    EmowidgetsError,
    FrameError,
    ModelFileError,
    OptionsError,
)
from emowidgets.infer import ClassifierOptions, EmotionClassifier
from emowidgets.pipeline import Pipeline
from emowidgets.sources import detector_for
from emowidgets.tools.cli import main as cli
from emowidgets.tools.report import write_report

PEOPLE = SHARED / "data" / "people.npz"


def test_every_error_is_in_the_tree_and_keeps_its_old_base():
    leaves = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert all(issubclass(e, EmowidgetsError) for e in leaves) and len(leaves) == 11
    assert issubclass(OptionsError, ValueError) and issubclass(ClosedError, RuntimeError)
    for leaf in leaves:
        assert leaf.__name__ in (errors.__doc__ or ""), leaf  # the documented tree names every leaf


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = cli(args)
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err  # one line, never a traceback
    return code, err


@pytest.fixture(scope="module")
def people_npz(tmp_path_factory):
    """20 real face crops of people.npz with their labels, as the ``x``/``y`` file ``evaluate`` reads."""
    with np.load(PEOPLE) as data:
        x, y = data["x"][:20], data["y"][:20]
    path = tmp_path_factory.mktemp("data") / "people20.npz"
    np.savez(path, x=x, y=y)
    return path


def test_truncated_npz(tmp_path, people_npz, capsys):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(people_npz.read_bytes()[: people_npz.stat().st_size // 2])
    code, err = run_cli(["evaluate", "--data", str(cut), "--json"], capsys)
    assert code == 3 and "not a readable .npz" in err


def test_empty_data_set_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 48, 48), np.uint8), y=np.zeros(0, np.int64))
    code, err = run_cli(["evaluate", "--data", str(empty), "--json"], capsys)
    assert code == 3 and "holds no images" in err


@pytest.mark.parametrize(("config", "match"), [("{not json", "JSONDecodeError"), ('{"convs": 2}', "KeyError")],
                         ids=["not-json", "missing-key"])
def test_broken_weight_metadata(tmp_path, people_npz, capsys, config, match):
    source = model_path("fast")
    with safe_open(str(source), framework="numpy") as f:
        meta = dict(f.metadata())
    path = tmp_path / "broken.safetensors"
    save_file(load_file(str(source)), str(path), metadata={**meta, "config": config})
    with pytest.raises(ModelFileError, match=f"broken model config.*{match}") as info:
        EmotionClassifier.create_from_options(ClassifierOptions(model=str(path)))
    assert info.value.__cause__ is not None
    code, err = run_cli(["evaluate", "--data", str(people_npz), "--model", str(path), "--json"], capsys)
    assert code == 4 and "broken model config" in err


def test_report_refuses_a_nan_row(tmp_path, pipeline: Pipeline, capsys):
    path = tmp_path / "class.csv"
    with ClassLog(path) as log:
        for i, frame in enumerate(video_frames(CLIPS / "multi_face.mp4", every=25)):
            log.log(pipeline.process_array(frame, seq=i, timestamp_ms=i * 1000), time_ms=1_700_000_000_000 + i * 1000)
    rows = list(csv.reader(path.open()))
    rows[5][rows[0].index("angry")] = "nan"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataFileError, match=r"1 row\(s\) hold scores that are not numbers.*data row 5"):
        read_log(path)
    code, err = run_cli(["report", str(path)], capsys)
    assert code == 3 and "not numbers in [0, 1]" in err
    assert not path.with_suffix(".html").exists()
    code, err = run_cli(["report", str(tmp_path / "missing.parquet")], capsys)
    assert code == 3 and "no such class log" in err
    with pytest.raises(DataFileError, match="no such class log"):
        write_report(tmp_path / "missing.csv")


def test_options_errors_in_the_cli(capsys):
    code, err = run_cli(["train", "--config", "no-such-config"], capsys)
    assert code == 2 and "no training config" in err
    code, err = run_cli(["evaluate", "fewshot", "--data", str(PEOPLE)], capsys)
    assert code == 2 and "--group-key" in err
    with pytest.raises(OptionsError, match="source kind must be one of"):
        detector_for("lecture")


def test_fast_adapter_is_refused_as_the_main_models_head(pipeline: Pipeline):
    fast = EmotionClassifier.create_from_options(ClassifierOptions(model="fast"))
    with np.load(PEOPLE) as data:
        x, y = data["x"][:40].astype(np.float32) / 255, data["y"][:40]
    happy = (y == 3).astype(np.int64)
    assert 0 < happy.sum() < len(happy)
    adapter, _ = fit_adapter(fast.classify(x).embeddings, happy, ("other", "smile"),
                             base=BaseHead.from_classifier(fast))
    assert adapter.backbone_id == fast.backbone_id != pipeline.classifier.backbone_id
    for head in (adapter, AdapterSet(room=adapter), AdapterSet(people={3: adapter})):
        with pytest.raises(ModelFileError, match="fitted on another backbone"):
            pipeline.head = head
    assert pipeline.head is None  # the refused head was never used
    with pytest.raises(AdapterError, match="2 to 12 labels"):
        fit_adapter(np.zeros((2, fast.embed_dim), np.float32), np.zeros(2, np.int64), ("one",))


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_16_bit_png_decodes_to_the_same_picture(pipeline: Pipeline):
    gray = np.asarray(Image.open(IMAGES / "single_man_smiling.jpg").convert("L"))
    wide = png(gray.astype(np.uint16) * 257)
    assert Image.open(io.BytesIO(wide)).mode.startswith("I;16")
    decoded = decode(wide)
    np.testing.assert_array_equal(decoded[:, :, 0], gray)  # scaled down, not clipped to white
    assert len(pipeline.process_image(wide).boxes) == len(pipeline.process_image(png(gray)).boxes) == 1
    assert len(pipeline.process_image(gray.astype(np.float32) / 255).boxes) == 1  # float arrays in [0, 1]
    with pytest.raises(FrameError, match=r"float frame must hold finite values in \[0, 1\]"):
        pipeline.process_array(gray.astype(np.float32))


@pytest.mark.parametrize(("fmt", "mode", "cut"), [("TIFF", "F", 1.0), ("BMP", "RGB", 1.0), ("QOI", "RGB", 0.5),
                                                  ("DDS", "RGB", 0.5)], ids=["float-tiff", "bmp", "qoi-cut",
                                                                             "dds-cut"])
def test_other_formats_are_refused_by_name(fmt, mode, cut):
    photo = Image.open(IMAGES / "single_man_smiling.jpg").convert("RGB")
    image = Image.fromarray(np.asarray(photo.convert("L"), np.float32) / 255) if mode == "F" else photo
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    data = buf.getvalue()[: int(len(buf.getvalue()) * cut)]
    with pytest.raises(FrameError, match=f"frame is a {fmt} image; frames must be JPEG, PNG or WebP"):
        decode(data)


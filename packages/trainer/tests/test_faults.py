"""Trainer faults (issue 16): wrong models and data, misspelt settings, files that are not what
their name says, output folders that cannot be written, TensorBoard that fails. Each is one line
naming the problem and a non-zero exit; nothing is silently scored or skipped."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bienbao.quant import ConfigError
from bienbao.trainer.config import load_train_config
from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.dataset import check_dataset, check_names
from bienbao.trainer.ultralytics.tensorboard import TensorBoardCallback

ROOT = Path(__file__).resolve().parents[3]
COCO_NAMES = ("person", "bicycle", "car")


def bienbao(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bienbao.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env=env,
    )


# -- 8: a model of other classes is refused, and the message says which differ -------------------
def test_8_other_class_names_are_named_not_scored_as_zero(sample_data) -> None:
    from bienbao.trainer.dataset import dataset_names

    names = dataset_names(sample_data)
    with pytest.raises(ValueError, match="was trained on 3 classes, .* has 33"):
        check_names(COCO_NAMES, names, "coco.pt", sample_data)
    renamed = list(names)
    renamed[4], renamed[7] = "stop", "yield"
    with pytest.raises(ValueError, match=f"2 differ by name .*4: 'stop' vs '{names[4]}'; 7: 'yield' vs"):
        check_names(renamed, names, "other.pt", sample_data)
    check_names(names, names, "same.pt", sample_data)  # the same classes pass


def test_8_evaluate_refuses_a_checkpoint_trained_on_other_classes(sample_data, tmp_path) -> None:
    from ultralytics import YOLO

    yolo = YOLO(str(ROOT / "models/pretrained/yolov8n-vn-signs-fp32.pt"))
    names = dict(yolo.model.names)
    names[0], names[1] = names[1], names[0]  # the same 33 names, two swapped: an easy mistake
    yolo.model.names = names
    swapped = tmp_path / "swapped.pt"
    yolo.save(str(swapped))
    result = bienbao("evaluate", "--model", swapped, "--data", sample_data)
    assert result.returncode == 2 and "2 differ by name" in result.stderr and "Traceback" not in result.stderr


# -- 9: check-data decodes every pixel and flags empty boxes ------------------------------------------
def test_9_check_data_finds_a_half_jpeg_and_a_zero_size_box(sample_data, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_data.parent, data)
    images = sorted((data / "valid/images").iterdir())
    cut = images[0]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(OSError), Image.open(cut) as image:  # what the check now does: a full decode
        image.load()
    label = data / "valid/labels" / (images[1].stem + ".txt")
    label.write_text("3 0.5 0.5 0.0 0.1\n")
    report = check_dataset(data / "dataset.yaml")
    errors = {(p.kind, Path(p.path).name) for p in report.errors}
    warnings = {(p.kind, Path(p.path).name) for p in report.warnings}
    assert ("image does not decode", cut.name) in errors
    assert ("box of zero width or height (ultralytics drops it: a lost sign)", label.name) in warnings
    result = bienbao("check-data", data / "dataset.yaml")
    assert result.returncode != 0 and cut.name in result.stdout + result.stderr


# -- 11: a misspelt ultralytics key is refused at load, with the near match ----------------------------
def test_11_an_unknown_ultralytics_key_names_the_near_match(sample_data) -> None:
    with pytest.raises(ConfigError, match=r"ultralytics.mosiac \(did you mean mosaic\?\)"):
        load_train_config(CONFIGS / "base.yaml", {"data": str(sample_data), "ultralytics": {"mosiac": 0.5}})
    result = bienbao("train", "--data", sample_data, "--set", "ultralytics.mosiac=0.5")
    assert result.returncode == 2 and "did you mean mosaic?" in result.stderr and "Traceback" not in result.stderr


# -- 12: a text file named .pt, read-only output folders ------------------------------------------------
def test_12_a_text_file_renamed_pt_is_one_line_for_evaluate_and_export(sample_data, tmp_path) -> None:
    fake = tmp_path / "model.pt"
    fake.write_text("this is a note, not weights\n")
    for command in (
        ["evaluate", "--model", fake, "--data", sample_data],
        ["export", "--checkpoint", fake, "--format", "onnx", "--output", tmp_path / "out"],
    ):
        result = bienbao(*command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{fake} is not an ultralytics checkpoint" in result.stderr


def test_12_read_only_outputs_of_evaluate_and_calibrate_are_named(sample_data, read_only_dir) -> None:
    model = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"
    result = bienbao("evaluate", "--model", model, "--data", sample_data, "--json", read_only_dir / "e.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert str(read_only_dir / "e.json") in result.stderr
    weights = ROOT / "models/pretrained/yolov8n-vn-signs-fp32.pt"
    result = bienbao(
        "calibrate", "--data", sample_data, "--weights", weights, "--batches", "1", cwd=read_only_dir
    )  # it writes models/ and logs/ here
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Read-only file system" in result.stderr


# -- 13: TensorBoard that cannot be written warns once and the run goes on -------------------------------
def test_13_tensorboard_on_a_read_only_folder_warns_once_and_does_not_raise(read_only_dir, caplog) -> None:
    callback = TensorBoardCallback(read_only_dir / "tb")
    with caplog.at_level(logging.WARNING, logger="bienbao.trainer"):
        callback.log({"loss": 1.0}, 1)
        callback.log({"loss": 0.5}, 2)
    assert callback.disabled and sum("TensorBoard logging" in r.message for r in caplog.records) == 1
    assert str(read_only_dir / "tb") in caplog.text

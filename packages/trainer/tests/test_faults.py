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


# == round 2 (issue 33): runs that would overwrite each other, damaged checkpoints, configs ==========


def _config(tmp_path: Path, sample_data: Path):
    return load_train_config(
        CONFIGS / "base.yaml",
        {
            "data": str(sample_data),
            "paths": {"logs": str(tmp_path / "logs"), "checkpoints": str(tmp_path / "models/checkpoints")},
        },
    )


def test_a_taken_run_name_gets_a_fresh_folder_and_a_held_run_is_refused(tmp_path, sample_data, caplog) -> None:
    from bienbao.trainer.runs.layout import claim_run

    config = _config(tmp_path, sample_data)
    name, first = claim_run(config, "qat")
    assert name == "qat"
    with caplog.at_level(logging.WARNING, logger="bienbao.trainer"):
        again, second = claim_run(config, "qat")  # a rerun, or a second run started at once
    assert again == "qat2" and "run name 'qat' is taken" in caplog.text
    (tmp_path / "models/checkpoints/qat3").mkdir(parents=True)  # checkpoints alone also count as taken
    assert claim_run(config, "qat")[0] == "qat4"
    # --exist-ok reuses the name, but never while another process writes that run
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
         "f.seek(0); f.truncate(); f.write('4242'); f.flush(); print('held', flush=True); time.sleep(30)",
         str(tmp_path / "logs/qat2/.bienbao-run.lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    second.release()
    assert holder.stdout.readline().strip() == "held"
    try:
        with pytest.raises(ConfigError, match=r"in use by another bienbao process \(pid 4242\)"):
            claim_run(config, "qat2", exist_ok=True)
    finally:
        holder.kill()
        holder.wait()
    assert claim_run(config, "qat2", exist_ok=True)[0] == "qat2"
    first.release()


def test_two_runs_started_at_once_with_one_name_get_two_folders(tmp_path, sample_data) -> None:
    code = (
        "import sys, time\n"
        "from bienbao.trainer.config import load_train_config\n"
        "from bienbao.trainer.config_files import PACKAGED\n"
        "from bienbao.trainer.runs.layout import claim_run\n"
        f"c = load_train_config(PACKAGED / 'base.yaml', {{'data': {str(sample_data)!r}, 'paths': "
        f"{{'logs': {str(tmp_path / 'logs')!r}, 'checkpoints': {str(tmp_path / 'ck')!r}}}}})\n"
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
        "print(claim_run(c, 'same')[0])\n"
    )
    import time

    start = str(time.time() + 6)  # both claim at the same instant, after their imports
    runs = [subprocess.Popen([sys.executable, "-c", code, start], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    names = sorted(run.communicate(timeout=120)[0].strip() for run in runs)
    assert names == ["same", "same2"]


def test_resume_from_a_last_pt_cut_short_falls_back_to_the_intact_copy(tmp_path, sample_data, caplog) -> None:
    import torch

    from bienbao.trainer.runs.layout import resumable_last

    config = _config(tmp_path, sample_data)
    last = tmp_path / "logs/run/weights/last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")  # killed while ultralytics rewrote it
    with pytest.raises(ConfigError, match="no intact copy"):
        resumable_last(last, config)
    copy = tmp_path / "models/checkpoints/run/last.pt"
    copy.parent.mkdir(parents=True)
    torch.save({"epoch": 4, "model": None}, copy)
    with caplog.at_level(logging.WARNING, logger="bienbao.trainer"):
        assert resumable_last(last, config) == last
    assert "resuming from the intact copy" in caplog.text and "(epoch 5)" in caplog.text
    assert torch.load(last, weights_only=False)["epoch"] == 4  # restored in place: ultralytics resumes from it
    last.write_bytes(copy.read_bytes()[:100])  # cut mid-file: also damaged
    assert resumable_last(last, config) == last and torch.load(last, weights_only=False)["epoch"] == 4


def test_set_ultralytics_values_win_over_the_qat_config_and_nested_keys_are_refused(sample_data) -> None:
    from bienbao.trainer.cli.commands import _set_values, _split_sets
    from bienbao.trainer.config import load_qat_config

    base, qat = _split_sets(["ultralytics.mosaic=0.5", "qat.epochs=2", "seed=1"])
    assert base == ["ultralytics.mosaic=0.5", "seed=1"] and qat == ["epochs=2", "ultralytics.mosaic=0.5"]
    assert load_qat_config(None, _set_values(qat)).ultralytics["mosaic"] == 0.5  # qat.yaml says 1.0
    with pytest.raises(ConfigError, match=r"ultralytics.mosaic: ultralytics settings are single values"):
        load_train_config(CONFIGS / "base.yaml", {"data": str(sample_data), **_set_values(["ultralytics.mosaic.x=1"])})
    result = bienbao("qat", "--data", sample_data, "--set", "ultralytics.mosaic.x=1")
    assert result.returncode == 2 and "single values" in result.stderr and "Traceback" not in result.stderr
    result = bienbao("train", "--data", sample_data, "--set", "seed=1", "--set", "seed.x=2")
    assert result.returncode == 2 and "seed is set to a value above" in result.stderr


def test_a_yaml_alias_bomb_is_refused_in_one_line(tmp_path, sample_data) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + f"\ndata: {sample_data}\n")
    result = bienbao("train", "--config", bomb)
    assert result.returncode == 2 and "the alias *a is not accepted" in result.stderr
    assert len(result.stderr) < 2000 and "Traceback" not in result.stderr
    data = tmp_path / "data.yaml"
    data.write_text(sample_data.read_text() + "\nextra: &e 1\nmore: *e\n")
    from bienbao.trainer.dataset import DatasetError

    with pytest.raises(DatasetError, match=r"alias \*e is not accepted"):
        check_dataset(data)


def test_a_nan_in_a_label_is_an_error_for_check_data_and_evaluate(sample_data, tmp_path) -> None:
    from bienbao.trainer.dataset import DatasetError
    from bienbao.trainer.evaluation.evaluate import label_targets

    data = tmp_path / "data"
    shutil.copytree(sample_data.parent, data)
    label = next((data / "valid/labels").glob("*.txt"))
    label.write_text("3 nan 0.5 0.02 0.03\n")
    report = check_dataset(data / "dataset.yaml")
    assert ("label line has a NaN or infinite number", label.name) in {
        (p.kind, Path(p.path).name) for p in report.errors
    }
    with pytest.raises(DatasetError, match="NaN or infinite"):
        label_targets(label, 640, 360)
    result = bienbao("evaluate", "--model", ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx",
                     "--data", data / "dataset.yaml", "--split", "val")  # fmt: skip
    assert result.returncode == 2 and "NaN or infinite" in result.stderr and "Traceback" not in result.stderr


def test_check_data_and_init_leave_torch_and_ultralytics_unimported(sample_data, tmp_path) -> None:
    """issue 31: entering the ultralytics adapter is a stage's explicit step; the commands that never
    load a model answer without importing torch or ultralytics."""
    for command in (["check-data", str(sample_data)], ["init", str(tmp_path / "project")]):
        code = (
            "import sys\nfrom bienbao.cli import main\n"
            f"status = main({command!r})\n"
            "print(status, 'torch' in sys.modules, 'ultralytics' in sys.modules)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
        assert done.stdout.strip().splitlines()[-1] == "0 False False", done.stdout + done.stderr


def test_evaluate_refuses_a_json_path_that_names_the_model_or_the_data(sample_data, tmp_path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx", model)
    before = model.read_bytes()
    for target in (model, sample_data):
        result = bienbao("evaluate", "--model", model, "--data", sample_data, "--json", target)
        assert result.returncode == 2 and "own file: writing there would destroy it" in result.stderr
    assert model.read_bytes() == before

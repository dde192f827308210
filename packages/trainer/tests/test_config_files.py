"""Config files are found from any folder, and their relative paths mean their own folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bienbao.quant import ConfigError
from bienbao.trainer.config import load_export_config, load_qat_config, load_quantization, load_train_config
from bienbao.trainer.config_files import PACKAGED, init_configs, locate_config, locate_experiment


def test_an_empty_folder_uses_the_packaged_defaults_as_if_they_were_in_configs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert locate_config("base").packaged
    train = load_train_config()
    assert Path(train.paths.checkpoints) == tmp_path / "models/checkpoints"
    assert Path(train.data) == tmp_path / "datasets/vn-signs-sample/dataset.yaml"
    qat = load_qat_config()
    assert Path(qat.weights) == tmp_path / "models/checkpoints/fp32/best.pt"
    # a config the packaged qat.yaml names, found in the package because ./configs/ has none
    assert Path(qat.quantization) == (PACKAGED / "quantization.yaml").resolve()
    assert load_quantization(qat.quantization).target == "onnxruntime"
    assert Path(load_export_config().output) == tmp_path / "models/exported"


def test_relative_paths_in_a_config_resolve_against_its_folder(tmp_path, monkeypatch) -> None:
    project = tmp_path / "project"
    (project / "cfg").mkdir(parents=True)
    (project / "cfg/base.yaml").write_text(
        yaml.safe_dump({"data": "../data/signs.yaml", "model": "yolov8n.pt", "paths": {"checkpoints": "out/ckpt"}})
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    train = load_train_config(project / "cfg/base.yaml", {"epochs": 2})
    assert Path(train.data) == project / "data/signs.yaml"
    assert Path(train.paths.checkpoints) == project / "cfg/out/ckpt"
    assert train.model == "yolov8n.pt"  # a bare model name that is not beside the config stays a name
    assert train.epochs == 2
    # command-line values are relative to the working folder and pass through untouched
    assert load_train_config(project / "cfg/base.yaml", {"data": "mine.yaml"}).data == "mine.yaml"


def test_overrides_merge_into_nested_sections(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    train = load_train_config(None, {"ultralytics": {"mosaic": 0.0}})
    assert train.ultralytics["mosaic"] == 0.0
    assert train.ultralytics["fliplr"] == 0.0  # the file's other ultralytics keys are kept


def test_a_local_configs_folder_wins_over_the_package(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    init_configs(tmp_path)
    path = tmp_path / "configs/base.yaml"
    path.write_text(path.read_text().replace("epochs: 50", "epochs: 7"))
    assert not locate_config("base").packaged
    assert load_train_config().epochs == 7
    assert Path(load_train_config().paths.logs) == tmp_path / "logs"


def test_init_never_overwrites_an_edited_config_without_force(tmp_path) -> None:
    written = init_configs(tmp_path)
    assert {p.name for p in written} >= {
        "base.yaml",
        "qat.yaml",
        "quantization.yaml",
        "export.yaml",
        "exp1_symmetric_quant.yaml",
    }
    edited = tmp_path / "configs/qat.yaml"
    edited.write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match="already exist"):
        init_configs(tmp_path)
    assert edited.read_text() == "epochs: 3\n"
    init_configs(tmp_path, force=True)
    assert edited.read_text() == (PACKAGED / "qat.yaml").read_text()


def test_a_missing_config_names_the_file_and_where_it_was_looked_for(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"config file not found: nope.yaml \(looked for .*/nope.yaml\)"):
        load_train_config("nope.yaml")
    with pytest.raises(ConfigError, match="experiment not found: exp9.*exp1_symmetric_quant"):
        locate_experiment("exp9")


def test_experiments_are_found_by_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    qat = load_qat_config(experiment="exp4_float_head")
    assert qat.name == "exp4_float_head"
    assert Path(qat.quantization).name == "exp4_float_head.yaml"


def test_init_command_from_an_empty_folder(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "init", str(tmp_path / "proj")],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "proj/configs/experiments/exp4_float_head.yaml").is_file()
    again = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "init", str(tmp_path / "proj")],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert again.returncode != 0 and "already exist" in again.stderr

"""Trainer fixtures: tiny real subsets of the embedded sample, PTQ checkpoints of the shipped
model, a detection-agreement counter. The sample and the model come from the repository's root
``conftest.py`` (``sample_data``, ``sample_frames``, ``fp32_weights``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

import bienbao.trainer.ultralytics  # noqa: F401  (before any test module imports ultralytics: torchvision ops, the version check)
from bienbao.trainer.config_files import PACKAGED as CONFIGS

SAMPLE = Path(__file__).resolve().parents[3] / "datasets/vn-signs-sample"

os.environ.setdefault("YOLO_OFFLINE", "1")


def make_subset(dst: Path, train: int = 8, val: int = 4) -> Path:
    """Copy ``train``/``val`` real frames of the sample (spread over recordings) with their labels;
    a dataset YAML."""
    for split, count in (("train", train), ("valid", val)):
        images = sorted((SAMPLE / split / "images").iterdir())
        step = max(1, len(images) // count)
        for sub in ("images", "labels"):
            (dst / split / sub).mkdir(parents=True, exist_ok=True)
        for image in images[::step][:count]:
            shutil.copy(image, dst / split / "images" / image.name)
            label = SAMPLE / split / "labels" / f"{image.stem}.txt"
            if label.exists():
                shutil.copy(label, dst / split / "labels" / label.name)
    names = yaml.safe_load((SAMPLE / "dataset.yaml").read_text())["names"]
    (dst / "dataset.yaml").write_text(
        yaml.safe_dump({"train": "train/images", "val": "valid/images", "nc": len(names), "names": names})
    )
    return dst / "dataset.yaml"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_subset(tmp_path_factory.mktemp("signs"))


@pytest.fixture
def fresh_data(tmp_path) -> Path:
    """A subset the test may break."""
    return make_subset(tmp_path / "signs", train=4, val=2)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in a temporary folder (runs write models/ and logs/ relative to it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    return tmp_path


@pytest.fixture(scope="session")
def valid_frames(sample_frames) -> list[Path]:
    """32 real frames from recordings the model was not fine-tuned on (parity checks on detections)."""
    return sample_frames


@pytest.fixture(scope="session")
def ptq_checkpoint(tmp_path_factory, tiny_data, fp32_weights):
    """``make(imgsz, policy="quantization.yaml", batches=1)`` (a packaged config) -> a PTQ checkpoint of the
    shipped FP32 model on the tiny subset (each combination calibrated once per session)."""
    from bienbao.trainer.config import CalibrationConfig, load_train_config
    from bienbao.trainer.runs.ptq import run_ptq

    made: dict[tuple, Path] = {}

    def make(imgsz: int, policy: str = "quantization.yaml", batches: int = 1) -> Path:
        key = (imgsz, policy, batches)
        if key not in made:
            folder = tmp_path_factory.mktemp("ptq")
            cwd = Path.cwd()
            os.chdir(folder)  # runs write models/ and logs/ relative to the working folder
            try:
                train = load_train_config(CONFIGS / "base.yaml", {"data": str(tiny_data), "imgsz": imgsz, "workers": 0})
                made[key] = folder / run_ptq(
                    train,
                    str(fp32_weights),
                    str(CONFIGS / policy),
                    CalibrationConfig(batches=batches, batch_size=4),
                    name=Path(policy).stem,
                )
            finally:
                os.chdir(cwd)
        return made[key]

    return make


@pytest.fixture(scope="session")
def agreeing_detections():
    """``count(expected, got) -> (agreeing, total)`` for two raw outputs ``(1, 4 + nc, A)`` of one
    frame: of the reference's boxes after NMS (conf 0.05), how many have a twin in ``got`` (conf
    0.04: a score may sit just below) of the same class with IoU > 0.9."""
    from ultralytics.utils.metrics import box_iou
    from ultralytics.utils.nms import non_max_suppression

    def count(expected, got) -> tuple[int, int]:
        kept_expected = non_max_suppression(expected, conf_thres=0.05, iou_thres=0.5)[0]
        kept_got = non_max_suppression(got, conf_thres=0.04, iou_thres=0.5)[0]
        agreeing = 0
        for box in kept_expected:
            same_class = kept_got[kept_got[:, 5] == box[5]]
            agreeing += bool(len(same_class)) and bool(box_iou(box[None, :4], same_class[:, :4]).max() > 0.9)
        return agreeing, len(kept_expected)

    return count

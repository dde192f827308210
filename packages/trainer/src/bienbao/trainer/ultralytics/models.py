"""Checkpoints through ultralytics: loaded, trained, validated and run, for the steps outside the
seam (``runs``, ``evaluation``, ``export``), which never import ultralytics themselves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.modules import Conv
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils.torch_utils import select_device

from bienbao.core.errors import first_line
from bienbao.trainer.config import ConfigError
from bienbao.trainer.threads import use_all_cores

__all__ = [
    "CalibrationContext",
    "ValidatorScores",
    "calibration_context",
    "checkpoint_predictor",
    "conv_blocks",
    "load_detection_model",
    "train_detector",
    "validate_checkpoint",
]

#: ultralytics callback event -> the callables to add for it
Callbacks = Mapping[str, Sequence[Callable[[Any], None]]]


def load_detection_model(path: str | Path) -> nn.Module:
    """The model inside an ultralytics checkpoint (``load_checkpoint``), or one line naming the file
    when it is not one (a text file renamed .pt, a truncated download)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        model, _ = load_checkpoint(path)
    except Exception as exc:  # ultralytics wraps pickle/zip errors in TypeError with a banner
        raise ConfigError(f"{path} is not an ultralytics checkpoint: {first_line(exc, 200)}") from exc
    return model


def _yolo(path: str | Path, **kwargs: Any) -> YOLO:
    try:
        return YOLO(str(path), **kwargs)
    except Exception as exc:  # ultralytics wraps pickle/zip errors in a TypeError with a banner
        raise ValueError(f"{path} is not an ultralytics checkpoint: {first_line(exc, 200)}") from exc


def train_detector(source: str, overrides: Mapping[str, Any], callbacks: Callbacks) -> None:
    """ultralytics' own detection training of ``source`` (a checkpoint or a model YAML)."""
    model = YOLO(source, task="detect")
    model.add_callback("on_pretrain_routine_start", use_all_cores)
    for event, functions in callbacks.items():
        for function in functions:
            model.add_callback(event, function)
    model.train(**overrides)


@dataclass(frozen=True)
class ValidatorScores:
    """What ultralytics' validator reports for a checkpoint, in plain numbers."""

    names: tuple[str, ...]
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class: dict[str, dict]
    instances: int
    speed_ms: dict[str, float]
    curve_recall: np.ndarray
    curve_precision: np.ndarray


def validate_checkpoint(
    model: Path,
    data: Path,
    split: str,
    imgsz: int,
    conf: float,
    iou: float,
    batch: int,
    check_names: Callable[[list[str]], None],
) -> ValidatorScores:
    """Score a checkpoint with ultralytics' validator; ``check_names`` sees the model's class
    names before anything runs (one load: the names are checked on the model that is validated)."""
    yolo = _yolo(model)
    names = [yolo.names[i] for i in sorted(yolo.names)]
    check_names(names)
    yolo.add_callback("on_val_start", use_all_cores)
    # rect=False: the square letterbox every exported file sees (ultralytics' default, rectangular
    # batches, feeds 640x384 for these frames and scores the same weights about 1 point lower)
    metrics = yolo.val(
        data=str(data),
        split=split,
        imgsz=imgsz,
        conf=conf,
        iou=iou,
        batch=batch,
        rect=False,
        plots=False,
        verbose=False,
        workers=0,
    )
    box = metrics.box
    per_class = {
        names[int(c)]: {
            "ap50": round(float(box.ap50[i]), 4),
            "ap50_95": round(float(box.ap[i]), 4),
            "instances": int(metrics.nt_per_class[int(c)]),
        }
        for i, c in enumerate(box.ap_class_index)
    }
    return ValidatorScores(
        tuple(names),
        float(box.map50),
        float(box.map),
        float(box.mp),
        float(box.mr),
        per_class,
        int(metrics.nt_per_class.sum()),
        {k: round(float(v), 2) for k, v in metrics.speed.items() if k in ("preprocess", "inference", "postprocess")},
        np.asarray(box.px),
        np.asarray(box.prec_values),
    )


def checkpoint_predictor(
    path: Path, imgsz: int, conf: float
) -> tuple[tuple[str, ...], Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The checkpoint's class names and ``frame (BGR) -> (xyxy, scores, classes)`` through
    ultralytics' predictor."""
    model = _yolo(path)
    model.add_callback("on_predict_start", use_all_cores)
    names = tuple(model.names[i] for i in sorted(model.names))

    def run(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes = model.predict(frame, imgsz=imgsz, conf=conf, verbose=False)[0].boxes
        return (
            boxes.xyxy.numpy().astype(np.float32),
            boxes.conf.numpy().astype(np.float32),
            boxes.cls.numpy().astype(np.int64),
        )

    return names, run


def conv_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Every ultralytics ``Conv`` block (conv, BN, activation) of ``model`` by name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, Conv)}


@dataclass(frozen=True)
class CalibrationContext:
    """What calibration outside a trainer needs from ultralytics: its arguments (image size, data
    settings), the parsed dataset and the device."""

    args: Any
    data: dict
    device: Any


def calibration_context(data: str | Path, imgsz: int, device: str | None) -> CalibrationContext:
    chosen = select_device(device or "", verbose=False)
    use_all_cores()  # select_device left torch one core short
    args = get_cfg(overrides={"imgsz": imgsz, "data": str(data), "workers": 0})
    return CalibrationContext(args, check_det_dataset(str(data)), chosen)

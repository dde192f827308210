"""What FP32, QAT and PTQ runs share: ultralytics arguments, the output layout, logging."""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bienbao.cli.files import atomic_path, file_sha256
from bienbao.trainer.config import ConfigError, TrainConfig
from bienbao.trainer.dataset import check_dataset, dataset_names

__all__ = [
    "MIRROR_PAIRS",
    "RunLayout",
    "append_csv",
    "checked_dataset",
    "file_sha256",
    "resolve_model_source",
    "ultralytics_overrides",
]

log = logging.getLogger("bienbao.trainer")

#: Classes that a horizontal flip turns into each other (or into nothing valid).
MIRROR_PAIRS = (("cam-re-trai", "cam-re-phai"), ("cam-oto-re-trai", "cam-oto-re-phai"))
MIRROR_SENSITIVE = {
    "cac-xe-chi-duoc-re-trai",
    "huong-phai-di-vong-chuong-ngai-vat-1",
    "cam-quay-dau-xe",
    "cam-oto-quay-dau-xe",
}


class RunLayout:
    """``models/checkpoints/<name>/`` for checkpoints, ``logs/<name>/`` for ultralytics' run folder
    (its ``weights/`` too, so a run resumes from there), ``logs/tensorboard/<name>/``."""

    def __init__(self, config: TrainConfig, name: str) -> None:
        self.name = name
        self.checkpoints = Path(config.paths.checkpoints) / name
        self.logs = Path(config.paths.logs) / name
        self.tensorboard = Path(config.paths.tensorboard) / name
        for folder in (self.checkpoints, self.logs.parent, self.tensorboard):
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"output path {folder} exists and is not a folder")

    def publish_weights(self, weights_dir: Path) -> list[Path]:
        """Copy ``best.pt``/``last.pt`` from an ultralytics run into the checkpoints folder."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        copied = []
        for name in ("last.pt", "best.pt"):
            source = weights_dir / name
            if source.is_file():  # copied under a temporary name, then renamed: never a half-copied .pt
                with atomic_path(self.checkpoints / name) as tmp:
                    shutil.copy2(source, tmp)
                copied.append(self.checkpoints / name)
        return copied


def checked_dataset(data: str | Path, fliplr: float) -> list[str]:
    """Check the dataset (stop on errors, report warnings once) and the flip setting; class names."""
    report = check_dataset(data)
    report.raise_for_errors()  # the message holds the whole report
    print(report.format())
    names = dataset_names(data)
    flipped = [c for pair in MIRROR_PAIRS for c in pair if c in names] + sorted(MIRROR_SENSITIVE & set(names))
    if fliplr > 0 and flipped:
        log.warning(
            "fliplr=%s mirrors left/right signs without swapping their labels (%s): set fliplr: 0.0",
            fliplr,
            ", ".join(flipped[:4]),
        )
    return names


def resolve_model_source(model: str) -> str:
    """A checkpoint path that exists, or a model YAML (training from scratch, said loudly)."""
    path = Path(model)
    if path.suffix in (".yaml", ".yml"):
        log.warning("training %s from scratch (no pretrained weights): expect poor accuracy on a short run", model)
        return model
    if not path.is_file():
        raise ConfigError(
            f"pretrained checkpoint {model} not found, and nothing is downloaded here. Put the file there, pass "
            "--model PATH (any ultralytics detection checkpoint), or --model yolov8n.yaml to train from scratch"
        )
    return str(path)


def ultralytics_overrides(config: TrainConfig, layout: RunLayout, extra: Mapping[str, Any]) -> dict[str, Any]:
    args = {
        "data": str(config.data),
        "imgsz": config.imgsz,
        "epochs": config.epochs,
        "batch": config.batch,
        "workers": config.workers,
        "seed": config.seed,
        "project": str(layout.logs.parent.resolve()),
        "name": layout.name,
        "exist_ok": True,
        "plots": False,
        "val": True,
    }
    if config.device is not None:
        args["device"] = config.device
    args.update(config.ultralytics)
    args.update(extra)
    return args


def append_csv(path: Path, row: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)

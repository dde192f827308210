"""``bienbao qat``: quantization-aware fine-tuning of an FP32 YOLOv8 checkpoint.

A new run (the config checked, the dataset checked, the schedule fitted to the epochs) or a
resumed one (its ``last.pt`` and the setup saved beside it), built on
``bienbao.trainer.ultralytics.qat_trainer.QATDetectionTrainer``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from bienbao.trainer.config import ConfigError, QATConfig, TrainConfig
from bienbao.trainer.runs.layout import RunLayout, checked_dataset, resumable_last, ultralytics_overrides
from bienbao.trainer.ultralytics.qat_trainer import SETUP_FILE, QATDetectionTrainer, QATSetup

__all__ = ["build_qat_trainer", "run_qat"]

log = logging.getLogger("bienbao.trainer")


def _check_resumable(last: Path) -> None:
    """A clear error for a ``last.pt`` that ultralytics would refuse with an AssertionError: a
    finished run (its checkpoint has no optimizer state and epoch -1)."""
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    if checkpoint.get("epoch", -1) < 0 or checkpoint.get("optimizer") is None:
        raise ConfigError(
            f"cannot resume {last}: that run finished, there is nothing left to train. Start a new run "
            "(bienbao qat --weights ... --name NEW) or use its best.pt"
        )


def build_qat_trainer(train: TrainConfig, qat: QATConfig, resume: str | None = None) -> QATDetectionTrainer:
    """The configured trainer for a new QAT run, or for resuming one from its ``last.pt``."""
    if resume is not None:
        last = Path(resume)
        setup_file = last.parent.parent / SETUP_FILE
        if not last.is_file() or not setup_file.is_file():
            raise FileNotFoundError(f"cannot resume: {last} or its run's {SETUP_FILE} is missing")
        last = resumable_last(last, train)
        _check_resumable(last)
        setup = QATSetup.from_json(setup_file.read_text(encoding="utf-8"), str(setup_file))
        # the resumed run's own layout (logs/<run>/weights/last.pt): never the config's default name
        layout = RunLayout(train, last.parent.parent.name)
        overrides = {"resume": str(last)}
    else:
        layout = RunLayout(train, qat.name)
        if not Path(qat.weights).is_file():
            raise FileNotFoundError(
                f"FP32 checkpoint {qat.weights} not found (run `bienbao train` first, or pass --weights)"
            )
        checked_dataset(train.data, float(qat.ultralytics.get("fliplr", 0.5)))
        schedule, change = qat.schedule.fit(qat.epochs)
        if change:
            log.warning(change)
            qat = dataclasses.replace(qat, schedule=schedule)
        setup = QATSetup(qat, qat.quantization, str(layout.tensorboard))
        extra = {"model": str(qat.weights), **qat.ultralytics_args()}
        if qat.distillation.enabled and qat.distillation.method == "feature":
            extra.update(distill_model=str(qat.weights), dis=qat.distillation.weight)
        overrides = ultralytics_overrides(train, layout, extra)
    trainer = QATDetectionTrainer(overrides=overrides, setup=setup)
    publish = lambda t: layout.publish_weights(Path(t.wdir))  # noqa: E731
    trainer.add_callback("on_model_save", publish)
    trainer.add_callback("on_train_end", publish)
    trainer.layout = layout
    return trainer


def run_qat(train: TrainConfig, qat: QATConfig, resume: str | None = None) -> Path:
    """Run QAT (or resume one from its ``last.pt``); returns the best checkpoint's published path."""
    trainer = build_qat_trainer(train, qat, resume)
    trainer.train()
    layout = trainer.layout
    print(f"QAT checkpoints: {layout.checkpoints}  logs: {trainer.save_dir}  tensorboard: {layout.tensorboard}")
    return layout.checkpoints / "best.pt"

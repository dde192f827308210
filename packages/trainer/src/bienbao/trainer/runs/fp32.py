"""``bienbao train``: FP32 fine-tuning of a pretrained YOLOv8 checkpoint on the sign data."""

from __future__ import annotations

from pathlib import Path

from bienbao.trainer.config import TrainConfig
from bienbao.trainer.runs.layout import (
    RunLayout,
    checked_dataset,
    resolve_model_source,
    resumable_last,
    ultralytics_overrides,
)
from bienbao.trainer.ultralytics.models import train_detector
from bienbao.trainer.ultralytics.tensorboard import TensorBoardCallback

__all__ = ["train_fp32"]


def train_fp32(config: TrainConfig) -> Path:
    """Train; returns the best checkpoint under ``models/checkpoints/<name>/``.

    ultralytics' run folder (``logs/<name>/``, with ``weights/last.pt`` after every epoch) makes an
    interrupted run resumable with ``resume=True``; the checkpoints are copied after every save.
    """
    layout = RunLayout(config, config.name)
    model = config.model
    if config.ultralytics.get("resume"):  # the checkpoint to resume may be cut short by a kill
        model = str(resumable_last(model, config))
    checked_dataset(config.data, float(config.ultralytics.get("fliplr", 0.5)))
    publish = lambda trainer: layout.publish_weights(Path(trainer.wdir))  # noqa: E731
    callbacks = {
        "on_fit_epoch_end": [TensorBoardCallback(layout.tensorboard)],
        "on_model_save": [publish],  # every epoch: an interrupted run loses nothing
        "on_train_end": [publish],  # the final, optimizer-stripped files
    }
    train_detector(resolve_model_source(model), ultralytics_overrides(config, layout, {}), callbacks)
    best = layout.checkpoints / "best.pt"
    print(f"FP32 checkpoints: {layout.checkpoints}  logs: {layout.logs}  tensorboard: {layout.tensorboard}")
    return best

"""``bienbao train``: FP32 fine-tuning of a pretrained YOLOv8 checkpoint on the sign data."""

from __future__ import annotations

from pathlib import Path

from ultralytics import YOLO

from . import _compat  # noqa: F401  (torchvision NMS on CPU-only torch; ultralytics imports torchvision lazily)
from ._runs import RunLayout, checked_dataset, resolve_model_source, ultralytics_overrides
from .config import TrainConfig
from .tensorboard import TensorBoardCallback
from .threads import use_all_cores

__all__ = ["train_fp32"]


def train_fp32(config: TrainConfig) -> Path:
    """Train; returns the best checkpoint under ``models/checkpoints/<name>/``.

    ultralytics' run folder (``logs/<name>/``, with ``weights/last.pt`` after every epoch) makes an
    interrupted run resumable with ``resume=True``; the checkpoints are copied after every save.
    """
    layout = RunLayout(config, config.name)
    checked_dataset(config.data, float(config.ultralytics.get("fliplr", 0.5)))
    model = YOLO(resolve_model_source(config.model), task="detect")
    model.add_callback("on_pretrain_routine_start", use_all_cores)
    model.add_callback("on_fit_epoch_end", TensorBoardCallback(layout.tensorboard))
    publish = lambda trainer: layout.publish_weights(Path(trainer.wdir))  # noqa: E731
    model.add_callback("on_model_save", publish)  # every epoch: an interrupted run loses nothing
    model.add_callback("on_train_end", publish)  # the final, optimizer-stripped files
    model.train(**ultralytics_overrides(config, layout, {}))
    best = layout.checkpoints / "best.pt"
    print(f"FP32 checkpoints: {layout.checkpoints}  logs: {layout.logs}  tensorboard: {layout.tensorboard}")
    return best

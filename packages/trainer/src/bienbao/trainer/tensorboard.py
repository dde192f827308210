"""Per-epoch TensorBoard scalars for an ultralytics trainer (losses, metrics, learning rate)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TensorBoardCallback"]


class TensorBoardCallback:
    """``trainer.add_callback("on_fit_epoch_end", TensorBoardCallback(folder))``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._writer = None

    def _scalar_writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(self.folder))
        return self._writer

    def log(self, scalars: dict[str, float], step: int) -> None:
        writer = self._scalar_writer()
        for key, value in scalars.items():
            writer.add_scalar(key, float(value), step)
        writer.flush()

    def __call__(self, trainer) -> None:
        scalars = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
        scalars.update({k: v for k, v in trainer.metrics.items() if isinstance(v, (int, float))})
        scalars.update({f"lr/{k}": v for k, v in trainer.lr.items()})
        self.log(scalars, trainer.epoch + 1)

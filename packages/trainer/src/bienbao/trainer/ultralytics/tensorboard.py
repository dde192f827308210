"""Per-epoch TensorBoard scalars for an ultralytics trainer (losses, metrics, learning rate).

Logging is a convenience, never a reason to lose a training run: when TensorBoard cannot be
written (the ``tensorboard`` package missing, a folder that is read-only or full), the callback
warns once, naming the folder and the reason, and the run goes on without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["TensorBoardCallback"]

log = logging.getLogger("bienbao.trainer")


class TensorBoardCallback:
    """``trainer.add_callback("on_fit_epoch_end", TensorBoardCallback(folder))``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._writer = None
        self.disabled: str | None = None  # why TensorBoard logging stopped, once it did

    def _scalar_writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(self.folder))
        return self._writer

    def log(self, scalars: dict[str, float], step: int) -> None:
        if self.disabled:
            return
        try:
            writer = self._scalar_writer()
            for key, value in scalars.items():
                writer.add_scalar(key, float(value), step)
            writer.flush()
        except (ImportError, OSError) as exc:  # no tensorboard package; a read-only, missing or full folder
            self.disabled = f"{type(exc).__name__}: {exc}"
            log.warning(
                "TensorBoard logging to %s is off for the rest of this run (%s); training goes on",
                self.folder,
                self.disabled,
            )

    def __call__(self, trainer) -> None:
        scalars = dict(trainer.label_loss_items(trainer.tloss, prefix="train"))
        scalars.update({k: v for k, v in trainer.metrics.items() if isinstance(v, (int, float))})
        scalars.update({f"lr/{k}": v for k, v in trainer.lr.items()})
        self.log(scalars, trainer.epoch + 1)

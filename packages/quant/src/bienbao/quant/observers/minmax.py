"""The min-max family: the running extremes, or their exponential moving average."""

from __future__ import annotations

import math

import torch

from .._state import set_state
from ..scheme import QuantScheme
from ._base import Observer, register_observer

__all__ = ["MinMaxObserver", "MovingAverageMinMaxObserver"]


@register_observer("minmax")
class MinMaxObserver(Observer):
    """Range = the smallest and largest values ever observed (per tensor or per channel)."""

    _lazy_buffers = ("min_val", "max_val")
    min_val: torch.Tensor
    max_val: torch.Tensor

    def _observe(self, rows: torch.Tensor) -> None:
        self._check_channels(rows, self.min_val)
        lo, hi = torch.aminmax(rows, dim=1)
        if self.min_val.numel() == 0:
            lo_new, hi_new = lo, hi
        else:
            lo_new, hi_new = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)
        set_state(self, "min_val", lo_new)
        set_state(self, "max_val", hi_new)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val, self.max_val


@register_observer("moving_average")
class MovingAverageMinMaxObserver(MinMaxObserver):
    """Range = exponential moving average of each batch's extremes.

    ``min <- min + c_t * (batch_min - min)`` (likewise max) for the ``t``-th batch; the first batch
    sets the range. ``c_t = averaging_constant`` (torch's ``MovingAverageMinMaxObserver``), or with
    ``warm_start=True`` ``c_t = max(averaging_constant, 1 / t)``: the first ``1 / averaging_constant``
    batches averaged alike, later ones decaying (the warm start of TensorFlow's
    ``ExponentialMovingAverage(num_updates=...)``). Without it a 32-batch calibration at ``c = 0.01``
    keeps 73 % of its first batch (``0.99 ** 31``): the range of the 8 images the seed drew first.
    Off by default: on the QAT study's model the warm start did not make PTQ better (3 seeds,
    mean -0.99 against -0.62 points: docs/results/qat-study/README.md, the calibration rows).
    """

    warm_start: bool = False  # the class default is what an observer pickled before 0.6 gets
    observations: torch.Tensor  # batches observed since the last reset

    def __init__(self, scheme: QuantScheme, averaging_constant: float = 0.01, warm_start: bool = False) -> None:
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant={averaging_constant}: must be in (0, 1] (0.01 is a usual choice)")
        super().__init__(scheme)
        self.averaging_constant = averaging_constant
        self.warm_start = warm_start
        self.register_buffer("observations", torch.zeros((), dtype=torch.long))

    def _observe(self, rows: torch.Tensor) -> None:
        self._check_channels(rows, self.min_val)
        lo, hi = torch.aminmax(rows, dim=1)
        self.observations += 1
        if self.min_val.numel() == 0:
            set_state(self, "min_val", lo)
            set_state(self, "max_val", hi)
            return
        c = self.averaging_constant
        if self.warm_start:
            c = max(c, 1.0 / int(self.observations))
        set_state(self, "min_val", self.min_val + c * (lo - self.min_val))
        set_state(self, "max_val", self.max_val + c * (hi - self.max_val))

    def reset(self) -> None:
        super().reset()
        self.observations.zero_()

    def _added_state(self) -> dict[str, torch.Tensor]:
        """A range saved before 0.6 had no count: it stands past the warm start (it already was an
        exponential average; it keeps moving as it did)."""
        return {"observations": torch.tensor(math.ceil(1.0 / self.averaging_constant), dtype=torch.long)}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, averaging_constant={self.averaging_constant}, warm_start={self.warm_start}"

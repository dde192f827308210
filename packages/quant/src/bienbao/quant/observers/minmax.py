"""The min-max family: the running extremes, or their exponential moving average."""

from __future__ import annotations

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

    ``min <- (1 - c) * min + c * batch_min`` (likewise max), with ``c = averaging_constant``;
    the first batch sets the range directly.
    """

    def __init__(self, scheme: QuantScheme, averaging_constant: float = 0.01) -> None:
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant={averaging_constant}: must be in (0, 1] (0.01 is a usual choice)")
        super().__init__(scheme)
        self.averaging_constant = averaging_constant

    def _observe(self, rows: torch.Tensor) -> None:
        self._check_channels(rows, self.min_val)
        lo, hi = torch.aminmax(rows, dim=1)
        if self.min_val.numel() == 0:
            set_state(self, "min_val", lo)
            set_state(self, "max_val", hi)
            return
        c = self.averaging_constant
        set_state(self, "min_val", self.min_val + c * (lo - self.min_val))
        set_state(self, "max_val", self.max_val + c * (hi - self.max_val))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, averaging_constant={self.averaging_constant}"

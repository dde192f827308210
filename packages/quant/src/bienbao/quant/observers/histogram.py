"""Histogram observer: the range is chosen from a running histogram, not the raw extremes.

Two ways to choose it:

- ``percentile``: clip the tails so that ``percentile`` % of the observed values lie inside
  (lower end at ``100 - percentile`` %, upper end at ``percentile`` %);
- ``mse``: among ranges shrunk towards zero by factors ``k / candidates`` (k = 1..candidates),
  the one whose quantize-dequantize error, summed over the histogram, is smallest.

The histogram covers the observed ``[min, max]`` with ``bins`` equal bins (per channel for
per-channel schemes). When a new batch widens the range, the old counts are moved to the new bins
at their bin centres, so the histogram stays a faithful summary of everything seen.
"""

from __future__ import annotations

from typing import Literal

import torch

from .._state import set_state
from ..scheme import QuantScheme, reference_fake_quantize
from ._base import Observer, register_observer

__all__ = ["HistogramObserver"]

HistogramMethod = Literal["percentile", "mse"]
_METHODS = ("percentile", "mse")


@register_observer("histogram")
class HistogramObserver(Observer):
    _lazy_buffers = ("min_val", "max_val", "histogram")
    min_val: torch.Tensor
    max_val: torch.Tensor
    histogram: torch.Tensor

    def __init__(
        self,
        scheme: QuantScheme,
        method: HistogramMethod = "percentile",
        bins: int = 2048,
        percentile: float = 99.99,
        candidates: int = 100,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"histogram method {method!r} is unknown: write one of {', '.join(_METHODS)}")
        if not isinstance(bins, int) or bins < 16:
            raise ValueError(f"bins={bins!r}: use an int of at least 16 (2048 is the default)")
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile={percentile}: must be in (50, 100], e.g. 99.99")
        if not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates={candidates!r}: use a positive int (100 is the default)")
        super().__init__(scheme)
        self.method = method
        self.bins = bins
        self.percentile = percentile
        self.candidates = candidates

    # -- observing ----------------------------------------------------------------------------
    def _observe(self, rows: torch.Tensor) -> None:
        self._check_channels(rows, self.min_val)
        lo, hi = torch.aminmax(rows, dim=1)
        if self.min_val.numel() == 0:
            set_state(self, "min_val", lo)
            set_state(self, "max_val", hi)
            set_state(self, "histogram", self._counts(rows, lo, hi))
            return
        new_min, new_max = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)
        if not (torch.equal(new_min, self.min_val) and torch.equal(new_max, self.max_val)):
            set_state(self, "histogram", self._counts(self._centers(), new_min, new_max, weights=self.histogram))
            set_state(self, "min_val", new_min)
            set_state(self, "max_val", new_max)
        set_state(self, "histogram", self.histogram + self._counts(rows, self.min_val, self.max_val))

    def _counts(
        self, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-row histogram of ``rows`` over ``[lo, hi]`` with ``self.bins`` bins."""
        channels = rows.shape[0]
        width = torch.clamp(hi - lo, min=torch.finfo(torch.float32).tiny)
        index = ((rows - lo[:, None]) / width[:, None] * self.bins).floor().clamp_(0, self.bins - 1).long()
        index += torch.arange(channels, device=rows.device)[:, None] * self.bins
        flat_weights = None if weights is None else weights.reshape(-1)
        counts = torch.bincount(index.reshape(-1), weights=flat_weights, minlength=channels * self.bins)
        return counts.reshape(channels, self.bins).float()

    def _edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bin width per channel ``(C, 1)`` and left edges ``(C, bins)``."""
        width = ((self.max_val - self.min_val) / self.bins)[:, None]
        steps = torch.arange(self.bins, device=self.min_val.device, dtype=torch.float32)[None, :]
        return width, self.min_val[:, None] + steps * width

    def _centers(self) -> torch.Tensor:
        width, left = self._edges()
        return left + width / 2

    # -- choosing the range -------------------------------------------------------------------
    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.method == "percentile":
            return self._percentile_range()
        return self._mse_range()

    def _percentile_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        width, left = self._edges()
        cdf = self.histogram.cumsum(dim=1) / self.histogram.sum(dim=1, keepdim=True).clamp_min(1.0)
        q_hi = self.percentile / 100.0
        q_lo = 1.0 - q_hi
        # upper end: right edge of the first bin whose cdf reaches q_hi
        hi_bin = (cdf < q_hi - 1e-12).sum(dim=1).clamp(max=self.bins - 1)
        # lower end: left edge of the first bin whose cdf exceeds q_lo
        lo_bin = (cdf <= q_lo + 1e-12).sum(dim=1).clamp(max=self.bins - 1)
        rows = torch.arange(self.histogram.shape[0], device=cdf.device)
        upper = left[rows, hi_bin] + width[:, 0]
        lower = left[rows, lo_bin]
        return torch.minimum(lower, self.max_val), torch.minimum(upper, self.max_val)

    def _mse_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        centers = self._centers()
        best_err = torch.full_like(self.min_val, float("inf"))
        best_lo, best_hi = self.min_val.clone(), self.max_val.clone()
        qmin, qmax = self.scheme.quant_min, self.scheme.quant_max
        for k in range(1, self.candidates + 1):
            factor = k / self.candidates
            lo, hi = self.min_val * factor, self.max_val * factor
            scale, zero_point = self.scheme.qparams(lo, hi)
            restored = reference_fake_quantize(centers, scale, zero_point, qmin, qmax, axis=0)
            err = (self.histogram * (restored - centers) ** 2).sum(dim=1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_lo, best_hi = torch.where(better, lo, best_lo), torch.where(better, hi, best_hi)
        return best_lo, best_hi

    def extra_repr(self) -> str:
        detail = f"percentile={self.percentile}" if self.method == "percentile" else f"candidates={self.candidates}"
        return f"{super().extra_repr()}, method={self.method}, bins={self.bins}, {detail}"

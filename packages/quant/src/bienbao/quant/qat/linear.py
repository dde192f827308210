"""QATLinear: a Linear whose input, weight (and optionally output) are fake-quantized."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LayerQConfig
from ._base import QATModule, register_qat_module

__all__ = ["QATLinear"]


@register_qat_module(nn.Linear)
class QATLinear(QATModule, nn.Linear):
    @classmethod
    def from_float(cls, linear: nn.Linear, config: LayerQConfig) -> QATLinear:
        """Shares ``linear``'s parameters (no copy)."""
        qat = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        qat.weight, qat.bias = linear.weight, linear.bias
        qat._attach_quantizers(config)
        return qat

    def to_float(self) -> nn.Linear:
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        linear.weight, linear.bias = self.weight, self.bias
        return linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._quantize(self.input_quantizer, x)
        weight = self._quantize(self.weight_quantizer, self.weight)
        return self._quantize(self.output_quantizer, F.linear(x, weight, self.bias))

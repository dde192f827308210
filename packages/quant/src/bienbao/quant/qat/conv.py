"""QATConv2d: a Conv2d whose input, weight (and optionally output) are fake-quantized."""

from __future__ import annotations

from typing import TypeVar, cast, overload

import torch
from torch import nn

from ..config import LayerQConfig
from ._base import QATModule, register_qat_module

__all__ = ["QATConv2d", "conv2d_like"]


C = TypeVar("C", bound=nn.Conv2d)


@overload
def conv2d_like(conv: nn.Conv2d, cls: None = None, bias: bool | None = None) -> nn.Conv2d: ...
@overload
def conv2d_like(conv: nn.Conv2d, cls: type[C], bias: bool | None = None) -> C: ...


def conv2d_like(conv: nn.Conv2d, cls: type[nn.Conv2d] | None = None, bias: bool | None = None) -> nn.Conv2d:
    """An empty ``cls`` (default ``nn.Conv2d``) with ``conv``'s geometry, device and dtype (bias
    as ``conv``'s unless given)."""
    # Conv2d keeps 2-tuples; its attributes are typed tuple[int, ...]
    return (cls or nn.Conv2d)(
        conv.in_channels,
        conv.out_channels,
        cast("tuple[int, int]", conv.kernel_size),
        stride=cast("tuple[int, int]", conv.stride),
        padding=cast("str | tuple[int, int]", conv.padding),
        dilation=cast("tuple[int, int]", conv.dilation),
        groups=conv.groups,
        bias=conv.bias is not None if bias is None else bias,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )


@register_qat_module(nn.Conv2d)
class QATConv2d(QATModule, nn.Conv2d):
    @classmethod
    def from_float(cls, conv: nn.Conv2d, config: LayerQConfig) -> QATConv2d:
        """Shares ``conv``'s parameters (no copy)."""
        qat = conv2d_like(conv, cls)
        qat.weight, qat.bias = conv.weight, conv.bias
        qat._attach_quantizers(config)
        return qat

    def float_weight(self) -> torch.Tensor:
        """The weight before quantization (``QATConvBn2d``'s has the BN factor folded in)."""
        return self.weight

    def to_float(self) -> nn.Conv2d:
        conv = conv2d_like(self)
        conv.weight, conv.bias = self.weight, self.bias
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._quantize(self.input_quantizer, x)
        weight = self._quantize(self.weight_quantizer, self.weight)
        return self._quantize(self.output_quantizer, self._conv_forward(x, weight, self.bias))

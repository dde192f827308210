"""QATConvBn2d: Conv2d + BatchNorm2d trained as one quantized conv, folded at export.

While training (BN statistics not frozen) the weight is quantized already scaled by the BN factor
``gamma / sqrt(running_var + eps)``, so QAT sees the weights that will be deployed; the conv output
is unscaled and passed through the BatchNorm in batch-statistics mode, which keeps updating the
running statistics (Jacob et al. 2018; the scheme PyTorch's QAT Conv-BN uses).

In eval mode, or once ``freeze_bn_stats()`` was called, the forward *is* the folded conv:
quantized ``W * factor`` plus ``(b - mean) * factor + beta``. ``fold()`` returns exactly that as a
``QATConv2d`` carrying the same quantizers, which is what gets exported.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ..config import LayerQConfig
from ._base import QATModule
from .conv import C, QATConv2d, conv2d_like

__all__ = ["QATConvBn2d"]


class QATConvBn2d(QATModule, nn.Conv2d):
    bn: nn.BatchNorm2d
    bn_frozen: torch.Tensor

    @classmethod
    def from_float(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d, config: LayerQConfig) -> QATConvBn2d:
        if bn.num_features != conv.out_channels:
            raise ValueError(f"BatchNorm2d({bn.num_features}) does not follow a conv with {conv.out_channels} outputs")
        if not bn.track_running_stats:
            raise ValueError("BatchNorm2d without running statistics cannot be folded into a conv")
        qat = conv2d_like(conv, cls)
        qat.weight, qat.bias = conv.weight, conv.bias
        qat.bn = bn
        qat.register_buffer("bn_frozen", torch.tensor(0, dtype=torch.uint8, device=conv.weight.device))
        qat._attach_quantizers(config)
        return qat

    def freeze_bn_stats(self, frozen: bool = True) -> QATConvBn2d:
        """Stop updating BN statistics; training then uses the running ones (the folded form)."""
        self.bn_frozen.fill_(int(frozen))
        return self

    @property
    def uses_batch_stats(self) -> bool:
        return self.training and not bool(self.bn_frozen.item())

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = self.bn.running_mean, self.bn.running_var
        if mean is None or var is None:  # from_float refuses such a BN; a hand-edited module may not
            raise ValueError("BatchNorm2d without running statistics cannot be folded into a conv")
        return mean, var

    def _bn_factor(self) -> torch.Tensor:
        bn = self.bn
        _, var = self._stats()
        gamma = bn.weight if bn.affine and bn.weight is not None else torch.ones_like(var)
        return gamma / torch.sqrt(var + bn.eps)

    def _folded_bias(self, factor: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        mean, _ = self._stats()
        bias = self.bias if self.bias is not None else torch.zeros_like(mean)
        beta = bn.bias if bn.affine and bn.bias is not None else torch.zeros_like(mean)
        return (bias - mean) * factor + beta

    def float_weight(self) -> torch.Tensor:
        return self.weight * self._bn_factor().reshape(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._quantize(self.input_quantizer, x)
        factor = self._bn_factor()
        weight = self._quantize(self.weight_quantizer, self.float_weight())
        if self.uses_batch_stats:
            y = self._conv_forward(x, weight, None) / factor.reshape(1, -1, 1, 1)
            if self.bias is not None:
                y = y + self.bias.reshape(1, -1, 1, 1)
            y = self.bn(y)  # batch statistics, updates running_mean/var
        else:
            y = self._conv_forward(x, weight, self._folded_bias(factor))
        return self._quantize(self.output_quantizer, y)

    @torch.no_grad()
    def _folded_conv(self, cls: type[C]) -> C:
        factor = self._bn_factor()
        conv = conv2d_like(self, cls, bias=True)
        conv.weight.copy_(self.weight * factor.reshape(-1, 1, 1, 1))
        cast(torch.Tensor, conv.bias).copy_(self._folded_bias(factor))  # bias=True: never None
        return conv

    def fold(self) -> QATConv2d:
        """The export form: a ``QATConv2d`` with folded weight and bias and these quantizers."""
        qat = self._folded_conv(QATConv2d)
        qat._take_quantizers(self)
        return qat.train(self.training)

    def to_float(self) -> nn.Conv2d:
        """The float conv this module computes in eval mode (BN folded, no quantizers)."""
        return self._folded_conv(nn.Conv2d).train(self.training)

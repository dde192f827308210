"""Conv-BN(-activation) fusion.

``fold_conv_bn``/``fold_linear_bn`` fold a BatchNorm's eval-mode affine map into the preceding
layer's weight and bias: exact in eval mode up to float rounding. ``fuse_modules`` applies the
fuser registered for each group's module types; the BatchNorm is replaced by ``nn.Identity`` and
an activation named third in a group is left in place (it is elementwise, nothing to fold).
For QAT, ``bienbao.quant.prepare_qat`` turns Conv-BN groups into ``QATConvBn2d`` instead, which
keeps updating BN statistics while training and folds at export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from ._modules import get_submodule, set_submodule
from .qat.conv import conv2d_like
from .qat.conv_bn import QATConvBn2d

__all__ = ["FUSERS", "QAT_FUSERS", "fold_conv_bn", "fold_linear_bn", "fuse_modules", "register_fuser"]

Fuser = Callable[[Any, Any], nn.Module]  # (layer, norm) of the registered types -> the fused layer

#: (layer type, norm type) -> function returning the folded layer.
FUSERS: dict[tuple[type[nn.Module], type[nn.Module]], Fuser] = {}


def register_fuser(layer_type: type[nn.Module], norm_type: type[nn.Module]) -> Callable[[Fuser], Fuser]:
    def decorate(fuser: Fuser) -> Fuser:
        FUSERS[(layer_type, norm_type)] = fuser
        return fuser

    return decorate


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(factor, shift)`` with ``bn(y) == y * factor + shift`` in eval mode."""
    mean, var = bn.running_mean, bn.running_var
    if not bn.track_running_stats or mean is None or var is None:
        raise ValueError(f"{type(bn).__name__} without running statistics cannot be folded")
    factor = torch.rsqrt(var + bn.eps)
    shift = -mean * factor
    if bn.affine:
        factor, shift = factor * bn.weight, shift * bn.weight + bn.bias
    return factor, shift


@register_fuser(nn.Conv2d, nn.BatchNorm2d)
@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` of eval mode."""
    factor, shift = _bn_affine(bn)
    fused = conv2d_like(conv, bias=True)
    fused.weight.copy_(conv.weight * factor.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    cast(torch.Tensor, fused.bias).copy_(bias * factor + shift)  # bias=True: never None
    return fused.train(conv.training)


@register_fuser(nn.Linear, nn.BatchNorm1d)
@torch.no_grad()
def fold_linear_bn(linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """A new Linear computing ``bn(linear(x))`` of eval mode."""
    factor, shift = _bn_affine(bn)
    fused = nn.Linear(
        linear.in_features, linear.out_features, bias=True, device=linear.weight.device, dtype=linear.weight.dtype
    )
    fused.weight.copy_(linear.weight * factor[:, None])
    bias = linear.bias if linear.bias is not None else torch.zeros_like(shift)
    cast(torch.Tensor, fused.bias).copy_(bias * factor + shift)  # bias=True: never None
    return fused.train(linear.training)


def fuse_modules(model: nn.Module, groups: Sequence[Sequence[str]]) -> nn.Module:
    """Fold each group ``[layer, norm(, activation)]`` in place; returns ``model``."""
    for group in groups:
        layer, norm = group_pair(model, group)
        fuser = FUSERS.get((type(layer), type(norm)))
        if fuser is None:
            known = ", ".join(f"({a.__name__}, {b.__name__})" for a, b in FUSERS)
            raise ValueError(
                f"no fuser for {list(group)} = ({type(layer).__name__}, {type(norm).__name__}); known: {known}"
            )
        set_submodule(model, group[0], fuser(layer, norm))
        set_submodule(model, group[1], nn.Identity())
    return model


def group_pair(model: nn.Module, group: Sequence[str]) -> tuple[nn.Module, nn.Module]:
    if isinstance(group, str) or len(group) not in (2, 3):
        raise ValueError(f"fusion group {group!r}: write [layer, norm] or [layer, norm, activation] module names")
    return get_submodule(model, group[0]), get_submodule(model, group[1])


# -- QAT fusion: (layer type, norm type) -> QAT module that keeps the norm training ---------------

QATFuser = Callable[..., nn.Module]
QAT_FUSERS: dict[tuple[type[nn.Module], type[nn.Module]], QATFuser] = {
    (nn.Conv2d, nn.BatchNorm2d): QATConvBn2d.from_float,
}

"""``prepare_qat``: swap a float model's layers for QAT modules as a policy says."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from ._modules import get_submodule, set_submodule
from .config import LayerQConfig, QuantPolicy
from .fusion import QAT_FUSERS, group_pair
from .qat import QAT_MODULES, QATModule

__all__ = ["prepare_qat", "quantizable_layers"]


def quantizable_layers(model: nn.Module, fuse: Sequence[Sequence[str]] = ()) -> list[str]:
    """Names a policy is resolved against: every module of a registered float type.

    The norm of a fusion group is not a layer of its own (it joins the layer it follows).
    """
    norms = {group[1] for group in fuse}
    return [name for name, module in model.named_modules() if type(module) in QAT_MODULES and name not in norms]


def prepare_qat(
    model: nn.Module, policy: QuantPolicy, *, fuse: Sequence[Sequence[str]] = (), inplace: bool = False
) -> nn.Module:
    """A QAT-ready model: each quantizable layer that ``policy`` does not leave float is replaced
    by its QAT module; each ``fuse`` group ``[conv, bn(, act)]`` becomes one ``QATConvBn2d``.

    Works on a deep copy unless ``inplace``. Quantizers start observing and quantizing; call
    ``calibrate`` before training so they start from a sensible range.
    """
    if not isinstance(policy, QuantPolicy):
        raise TypeError(f"policy must be a QuantPolicy (see bienbao.quant.get_preset), got {type(policy).__name__}")
    if any(isinstance(m, QATModule) for m in model.modules()):
        raise ValueError("the model already holds QAT modules: prepare_qat takes a float model")
    model = model if inplace else copy.deepcopy(model)
    groups = [tuple(group) for group in fuse]
    plan = policy.resolve_all(quantizable_layers(model, groups))
    for group in groups:
        _fuse_group(model, group, plan)
    fused = {group[0] for group in groups}
    for name, config in plan.items():
        if name not in fused and not config.is_float:
            module = get_submodule(model, name)
            qat_type: Any = QAT_MODULES[type(module)]  # each registered type's from_float(module, config)
            set_submodule(model, name, qat_type.from_float(module, config))
    return model


def _fuse_group(model: nn.Module, group: tuple[str, ...], plan: dict[str, LayerQConfig]) -> None:
    layer, norm = group_pair(model, group)
    config = plan.get(group[0])
    if config is None:
        raise ValueError(
            f"fusion group {list(group)}: {group[0]!r} is not a quantizable layer ({type(layer).__name__})"
        )
    if config.is_float:  # the policy keeps this layer float: leave layer and norm as they are
        return
    fuser = QAT_FUSERS.get((type(layer), type(norm)))
    if fuser is None:
        known = ", ".join(f"({a.__name__}, {b.__name__})" for a, b in QAT_FUSERS)
        raise ValueError(
            f"no QAT fuser for {list(group)} = ({type(layer).__name__}, {type(norm).__name__}); known: {known}"
        )
    set_submodule(model, group[0], fuser(layer, norm, config))
    set_submodule(model, group[1], nn.Identity())

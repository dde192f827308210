"""What every QAT module shares, and the registry of float type -> QAT module."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from ..config import ROLES, LayerQConfig
from ..fake_quantize import FakeQuantize

__all__ = ["QAT_MODULES", "QATModule", "register_qat_module"]

Q = TypeVar("Q", bound="QATModule")

#: Exact float module type -> its QAT counterpart. Exact types: a subclass is not silently
#: treated as its base (its forward may differ).
QAT_MODULES: dict[type[nn.Module], type[QATModule]] = {}


def register_qat_module(float_type: type[nn.Module]) -> Callable[[type[Q]], type[Q]]:
    def decorate(cls: type[Q]) -> type[Q]:
        if float_type in QAT_MODULES:
            raise ValueError(f"{float_type.__name__} already maps to {QAT_MODULES[float_type].__name__}")
        cls._FLOAT_TYPE = float_type
        QAT_MODULES[float_type] = cls
        return cls

    return decorate


class QATModule(nn.Module):
    """Mixin: children ``input_quantizer``, ``weight_quantizer``, ``output_quantizer`` (each a
    ``FakeQuantize`` or ``None``) built from a ``LayerQConfig``, kept as ``self.qconfig``."""

    input_quantizer: FakeQuantize | None
    weight_quantizer: FakeQuantize | None
    output_quantizer: FakeQuantize | None
    weight: torch.Tensor  # the float layer's (nn.Conv2d / nn.Linear) parameter
    qconfig: LayerQConfig
    _FLOAT_TYPE: type[nn.Module]

    def _attach_quantizers(self, config: LayerQConfig) -> None:
        self.qconfig = config
        for role in ROLES:
            role_config = getattr(config, role)
            self.register_module(f"{role}_quantizer", None if role_config is None else role_config.build())
        if self.weight_quantizer is not None:  # quantizer state lives where the weights live
            self.weight_quantizer.to(self.weight.device)
        for role in ("input", "output"):
            quantizer = getattr(self, f"{role}_quantizer")
            if quantizer is not None:
                quantizer.to(self.weight.device)

    def _take_quantizers(self, other: QATModule) -> None:
        """Adopt ``other``'s quantizers and their state (used when folding BN at export)."""
        self.qconfig = other.qconfig
        for role in ROLES:
            self.register_module(f"{role}_quantizer", getattr(other, f"{role}_quantizer"))

    def float_weight(self) -> torch.Tensor:
        """The float weight the weight quantizer is fed (for a conv with BN: already BN-scaled)."""
        return self.weight

    @staticmethod
    def _quantize(quantizer: FakeQuantize | None, x: torch.Tensor) -> torch.Tensor:
        return x if quantizer is None else quantizer(x)

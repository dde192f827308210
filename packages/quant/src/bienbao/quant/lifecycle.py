"""Switches over a whole prepared model, and ``convert`` to the export form."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

from torch import nn

from ._modules import set_submodule
from .config import ROLES
from .fake_quantize import FakeQuantize, QuantizerNotReadyError
from .qat import QATConvBn2d, QATModule

__all__ = [
    "convert",
    "enable_fake_quant",
    "enable_observers",
    "freeze_bn_stats",
    "iter_quantizers",
    "qat_layers",
    "set_weight_bits",
]


def qat_layers(model: nn.Module) -> Iterator[tuple[str, QATModule]]:
    for name, module in model.named_modules():
        if isinstance(module, QATModule):
            yield name, module


def iter_quantizers(model: nn.Module, roles: Iterable[str] = ROLES) -> Iterator[tuple[str, FakeQuantize]]:
    """``(qualified name, quantizer)`` for every quantizer whose name ends with ``<role>_quantizer``.

    Quantizers of structural ops (``concat_input_quantizer``, ``add_input_quantizer``) count as
    ``input``. A quantizer shared by two modules is yielded once, under its first name.
    """
    roles = tuple(roles)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown quantizer role(s) {sorted(unknown)}: write some of {', '.join(ROLES)}")
    suffixes = tuple(f"{role}_quantizer" for role in roles)
    for name, module in model.named_modules():
        if isinstance(module, FakeQuantize) and name.rsplit(".", 1)[-1].endswith(suffixes):
            yield name, module


def enable_observers(model: nn.Module, enabled: bool = True, roles: Iterable[str] = ROLES) -> nn.Module:
    """Turn range observation on or off (off = ranges frozen)."""
    for _, quantizer in iter_quantizers(model, roles):
        quantizer.enable_observer(enabled)
    return model


def enable_fake_quant(model: nn.Module, enabled: bool = True, roles: Iterable[str] = ROLES) -> nn.Module:
    """Turn quantize-dequantize on or off (off = those tensors pass through in float)."""
    for _, quantizer in iter_quantizers(model, roles):
        quantizer.enable_fake_quant(enabled)
    return model


def set_weight_bits(model: nn.Module, bits: int) -> int:
    """Every quantizing weight quantizer on the same grid at ``bits`` wide
    (``FakeQuantize.regrid_bits``); returns how many changed. For an export whose runtime wants
    another width than training used (8-bit codes where 7-bit ones were only there to keep ONNX
    Runtime's AVX2 kernels from saturating)."""
    changed = 0
    for _, quantizer in iter_quantizers(model, roles=("weight",)):
        if quantizer.quantizing and quantizer.scheme.bits != bits:
            quantizer.regrid_bits(bits)
            changed += 1
    return changed


def freeze_bn_stats(model: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or resume) BN statistics updates in every ``QATConvBn2d``."""
    for _, layer in qat_layers(model):
        if isinstance(layer, QATConvBn2d):
            layer.freeze_bn_stats(frozen)
    return model


def convert(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The export form of a trained/calibrated QAT model, in eval mode: BN folded into every
    ``QATConvBn2d`` (now ``QATConv2d``), observers off (ranges frozen), every quantizer checked
    to have a range. ``torch.onnx.export`` of the result writes QuantizeLinear/DequantizeLinear."""
    model = model if inplace else copy.deepcopy(model)
    for name, layer in list(qat_layers(model)):
        if isinstance(layer, QATConvBn2d):
            if name:
                set_submodule(model, name, layer.fold())
            else:
                raise ValueError("convert: the model itself is a QATConvBn2d; call .fold() on it")
    missing = [name for name, q in iter_quantizers(model) if not q.has_qparams]
    if missing:
        raise QuantizerNotReadyError(
            f"{len(missing)} quantizer(s) have no range (e.g. {', '.join(missing[:3])}): calibrate first"
        )
    enable_observers(model, False)
    return model.eval()

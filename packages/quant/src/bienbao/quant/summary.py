"""What a policy did to every layer: ``quant_summary`` (data) and ``print_quant_summary`` (table)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from torch import nn

from .config import ROLES
from .fake_quantize import FakeQuantize
from .qat import QAT_MODULES, QATModule

__all__ = ["LayerSummary", "print_quant_summary", "quant_summary"]


@dataclass(frozen=True)
class LayerSummary:
    name: str
    module: str
    input: str
    weight: str
    output: str

    @property
    def quantized(self) -> bool:
        return any(getattr(self, role) not in ("float", "-") for role in ROLES)


def _describe(quantizer: FakeQuantize | None) -> str:
    if quantizer is None:
        return "float"
    switches = ("O" if quantizer.observing else "-") + ("Q" if quantizer.quantizing else "-")
    text = f"{quantizer.scheme} {quantizer.observer.name} [{switches}]"
    if quantizer.has_qparams and quantizer.scale.numel() == 1:
        text += f" s={quantizer.scale.item():.4g} zp={int(quantizer.zero_point.item())}"
    elif quantizer.has_qparams:
        text += f" s={quantizer.scale.min().item():.3g}..{quantizer.scale.max().item():.3g}"
    elif quantizer.quantizing:
        text += " (no range yet)"
    return text


def quant_summary(model: nn.Module) -> list[LayerSummary]:
    """One row per QAT layer, per quantizable layer left in float, and per other module that
    owns quantizers of its own (a Concat or residual Add quantized on a shared grid), in module order."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, QATModule):
            described = [_describe(getattr(module, f"{role}_quantizer")) for role in ROLES]
            rows.append(LayerSummary(name, type(module).__name__, *described))
        elif type(module) in QAT_MODULES:
            rows.append(LayerSummary(name, type(module).__name__, "float", "float", "float"))
        else:
            own = [(child, q) for child, q in module.named_children() if isinstance(q, FakeQuantize)]
            if own:
                inputs = "; ".join(f"{child}: {_describe(q)}" for child, q in own)
                rows.append(LayerSummary(name, type(module).__name__, inputs, "-", "-"))
    return rows


def print_quant_summary(
    model: nn.Module, file: TextIO | None = None, notes: Mapping[str, str] | None = None
) -> list[LayerSummary]:
    """Print the summary as a table (O = observing, Q = quantizing); returns the rows. ``notes``
    (layer name -> text) add a column saying why a layer is as it is (e.g. kept float as critical)."""
    file = file or sys.stdout
    rows = quant_summary(model)
    notes = dict(notes or {})
    header: tuple[str, ...] = ("layer", "module", "input", "weight", "output")
    table: list[tuple[str, ...]] = [(r.name, r.module, r.input, r.weight, r.output) for r in rows]
    if notes:
        header = (*header, "why")
        table = [(*row, notes.get(row[0], "")) for row in table]
    table = [header, *table]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip(), file=file)
        if index == 0:
            print("  ".join("-" * width for width in widths), file=file)
    quantized = sum(r.quantized for r in rows)
    print(f"{quantized} quantized layer(s), {len(rows) - quantized} left float", file=file)
    return rows

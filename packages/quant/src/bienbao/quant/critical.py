"""Critical layers found cheaply: each quantized layer ranked by the error it alone causes at the
model's output, on a few calibration inputs (forward passes only: seconds, not an mAP sweep).

    ranking = rank_by_output_error(calibrated_model, inputs, output=lambda out: out[1])
    rules = critical_rules(ranking, top_k=2)          # Rule(name, skip=True) for the worst two
    policy = policy.with_rules(*rules)  # or QuantPolicy(policy.default, (*policy.rules, *rules))

For every QAT layer, only that layer's quantizers are switched on (every other one passes float
through) and the model's output (``output`` picks the tensor or tensors to compare) is compared with
the all-float output: SQNR in dB, lowest first. A layer whose own error the network amplifies (a
first conv with a wide, heavy-tailed range) ranks above one whose error fades. Ties within
``separation_db`` of the K-th layer are reported, so a "top K" that the metric cannot separate is
said to be one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import Rule
from .lifecycle import iter_quantizers, qat_layers

__all__ = ["CriticalRanking", "LayerOutputError", "critical_rules", "rank_by_output_error"]


@dataclass(frozen=True)
class LayerOutputError:
    name: str
    sqnr_db: float  # the model output's SQNR with only this layer quantized


@dataclass(frozen=True)
class CriticalRanking:
    layers: tuple[LayerOutputError, ...]  # lowest SQNR (most critical) first
    inputs: int

    def top(self, k: int) -> tuple[LayerOutputError, ...]:
        return self.layers[:k]

    def separated(self, k: int, separation_db: float = 0.5) -> bool:
        """Whether the K-th layer is more than ``separation_db`` worse than the next one."""
        if k <= 0 or k >= len(self.layers):
            return True
        return self.layers[k].sqnr_db - self.layers[k - 1].sqnr_db > separation_db

    def reason(self, name: str) -> str:
        for rank, layer in enumerate(self.layers, 1):
            if layer.name == name:
                return (
                    f"critical #{rank} of {len(self.layers)}: alone it leaves the output at "
                    f"{layer.sqnr_db:.1f} dB SQNR ({self.inputs} calibration inputs)"
                )
        raise KeyError(name)


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach().float().reshape(-1)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return []


@torch.no_grad()
def rank_by_output_error(
    model: nn.Module,
    inputs: Iterable[torch.Tensor],
    output: Callable[[Any], Any] = lambda out: out,
    layers: Sequence[str] | None = None,
    scope: Callable[[str], str] = lambda name: name,
) -> CriticalRanking:
    """Rank the QAT layers of a calibrated ``model`` (every quantizer with a range) by the output
    SQNR each causes alone. ``scope(layer)`` is the module prefix whose quantizers go with a layer
    (those a ``skip`` rule on it removes: for a YOLO conv block, the block's activation quantizers
    too). The model's switches are restored afterwards."""
    batches = list(inputs)
    if not batches:
        raise ValueError("rank_by_output_error needs at least one input")
    quantizers = list(iter_quantizers(model))
    saved = [(q, q.observing, q.quantizing) for _, q in quantizers]
    names = list(layers) if layers is not None else [name for name, _ in qat_layers(model)]
    was_training = model.training
    model.eval()
    try:
        for _, quantizer in quantizers:
            quantizer.enable_observer(False).enable_fake_quant(False)
        reference = [torch.cat(_flatten(output(model(x)))) for x in batches]
        signal = sum(float((r.double() ** 2).sum()) for r in reference)
        results = []
        for layer in names:
            prefix = scope(layer) + "."
            own = [q for name, q in quantizers if name.startswith(prefix)]
            for quantizer in own:
                quantizer.enable_fake_quant(True)
            noise = sum(
                float(((torch.cat(_flatten(output(model(x)))) - r).double() ** 2).sum())
                for x, r in zip(batches, reference, strict=True)
            )
            for quantizer in own:
                quantizer.enable_fake_quant(False)
            results.append(LayerOutputError(layer, math.inf if noise == 0 else 10 * math.log10(signal / noise)))
    finally:
        for quantizer, observing, quantizing in saved:
            quantizer.enable_observer(observing).enable_fake_quant(quantizing)
        model.train(was_training)
    return CriticalRanking(tuple(sorted(results, key=lambda e: e.sqnr_db)), len(batches))


def critical_rules(ranking: CriticalRanking, top_k: int) -> tuple[Rule, ...]:
    """``Rule(name, skip=True)`` for the ``top_k`` most critical layers (appended last, they win)."""
    if top_k < 0:
        raise ValueError(f"top_k={top_k}: must be >= 0")
    return tuple(Rule(layer.name, skip=True) for layer in ranking.top(top_k))

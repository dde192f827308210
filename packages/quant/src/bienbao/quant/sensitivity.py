"""Per-layer sensitivity analysis and the critical-layer rules built from it.

``sensitivity_analysis(model, evaluate)`` takes a prepared, calibrated model and a callable
``evaluate(model) -> float`` (higher is better, e.g. mAP50), and measures for every QAT layer:

- ``only_quantized``: the metric with only that layer quantized (every other layer float):
  how much that layer alone costs;
- ``only_float``: the metric with every layer quantized except that one: how much leaving it
  in float would recover.

Ranges stay frozen while it runs (observers off) and every switch is restored afterwards.
``SensitivityReport.critical_rules(top_k, keep)`` turns the ranking into policy rules keeping
the most sensitive layers in float or at a higher weight bit width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import QuantizerConfig, QuantPolicy, Rule
from .lifecycle import enable_fake_quant, iter_quantizers, qat_layers

__all__ = ["LayerSensitivity", "SensitivityReport", "sensitivity_analysis", "with_critical_layers"]


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    only_quantized: float
    only_float: float


@dataclass(frozen=True)
class SensitivityReport:
    float_metric: float
    quantized_metric: float
    layers: tuple[LayerSensitivity, ...]

    def drop_when_quantized(self, layer: LayerSensitivity) -> float:
        """Metric lost when only ``layer`` is quantized (larger = more sensitive)."""
        return self.float_metric - layer.only_quantized

    def gain_when_float(self, layer: LayerSensitivity) -> float:
        """Metric recovered when only ``layer`` is left float (larger = more sensitive)."""
        return layer.only_float - self.quantized_metric

    def ranking(self, by: str = "drop_when_quantized") -> list[LayerSensitivity]:
        """Most sensitive first, by ``drop_when_quantized`` or ``gain_when_float``."""
        if by not in ("drop_when_quantized", "gain_when_float"):
            raise ValueError(f"rank by {by!r}: write drop_when_quantized or gain_when_float")
        key = getattr(self, by)
        return sorted(self.layers, key=key, reverse=True)

    def ties_at(self, top_k: int, by: str = "drop_when_quantized", tolerance: float = 1e-4) -> list[str]:
        """The layers that score the same as the ``top_k``-th (within ``tolerance``), if any fall
        outside the top K: then the metric does not separate them, and a "top K" is arbitrary
        (typical of mAP on a handful of images, where most layers change nothing)."""
        ranked = self.ranking(by)
        if not 0 < top_k < len(ranked):
            return []
        key = getattr(self, by)
        edge = key(ranked[top_k - 1])
        tied = [layer.name for layer in ranked if abs(key(layer) - edge) <= tolerance]
        return tied if any(layer.name in tied for layer in ranked[top_k:]) else []

    def critical_rules(
        self, top_k: int, keep: str | QuantizerConfig = "float", by: str = "drop_when_quantized"
    ) -> tuple[Rule, ...]:
        """Rules for the ``top_k`` most sensitive layers: ``keep="float"`` skips them, a
        ``QuantizerConfig`` (e.g. 16-bit weights) replaces their weight quantizer."""
        if top_k < 0:
            raise ValueError(f"top_k={top_k}: must be >= 0")
        if keep != "float" and not isinstance(keep, QuantizerConfig):
            raise ValueError(f"keep={keep!r}: write 'float' or a QuantizerConfig for the weights")
        names = [layer.name for layer in self.ranking(by)[:top_k]]
        if isinstance(keep, QuantizerConfig):
            return tuple(Rule(name, weight=keep) for name in names)
        return tuple(Rule(name, skip=True) for name in names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_metric": self.float_metric,
            "quantized_metric": self.quantized_metric,
            "layers": [
                {
                    "name": layer.name,
                    "only_quantized": layer.only_quantized,
                    "only_float": layer.only_float,
                    "drop_when_quantized": self.drop_when_quantized(layer),
                    "gain_when_float": self.gain_when_float(layer),
                }
                for layer in self.ranking()
            ],
        }


def sensitivity_analysis(
    model: nn.Module, evaluate: Callable[[nn.Module], float], layers: Sequence[str] | None = None
) -> SensitivityReport:
    """Measure each QAT layer's sensitivity (see module docstring); ``layers`` limits which."""
    available = dict(qat_layers(model))
    names = list(available) if layers is None else list(layers)
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"not QAT layers of this model: {', '.join(missing)}")
    if not names:
        raise ValueError("sensitivity_analysis: the model has no QAT layers; call prepare_qat first")
    saved = [(q, q.observing, q.quantizing) for _, q in iter_quantizers(model)]
    try:
        for quantizer, _, _ in saved:
            quantizer.enable_observer(False)
        float_metric = float(evaluate(enable_fake_quant(model, False)))
        quantized_metric = float(evaluate(enable_fake_quant(model, True)))
        results = []
        for name in names:
            enable_fake_quant(model, False)
            enable_fake_quant(available[name], True)
            only_quantized = float(evaluate(model))
            enable_fake_quant(model, True)
            enable_fake_quant(available[name], False)
            only_float = float(evaluate(model))
            results.append(LayerSensitivity(name, only_quantized, only_float))
    finally:
        for quantizer, observing, quantizing in saved:
            quantizer.enable_observer(observing).enable_fake_quant(quantizing)
    return SensitivityReport(float_metric, quantized_metric, tuple(results))


def with_critical_layers(
    policy: QuantPolicy, report: SensitivityReport, top_k: int, keep: str | QuantizerConfig = "float"
) -> QuantPolicy:
    """``policy`` with the report's critical rules appended (so they take precedence)."""
    return policy.with_rules(*report.critical_rules(top_k, keep))

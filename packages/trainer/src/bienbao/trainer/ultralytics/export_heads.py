"""The Detect head in export form: ultralytics' export mode, and a DFL that ONNX Runtime runs fast.

ultralytics' DFL takes a softmax over a middle axis; the two forms here give the same numbers with
a graph that runs faster (docs/results/design-measurements.md). ``heads_for_export`` picks one per
head from its box-logit quantizer.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import DFL, Detect

__all__ = ["BOUNDED_LOGITS", "BoundedDFL", "LastAxisDFL", "dfl_for", "heads_for_export"]


class LastAxisDFL(DFL):
    """DFL with its softmax over the last axis: the same numbers, but ONNX Runtime runs a
    softmax over a middle axis through transposes (a tenth of an INT8 frame at 640:
    docs/results/design-measurements.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        p = x.view(b, 4, self.c1, a).transpose(2, 3).softmax(-1)  # (b, 4, anchors, bins)
        return (p @ self.conv.weight.view(self.c1, 1)).view(b, 4, a)


class BoundedDFL(DFL):
    """The DFL for box logits that come off a quantizer's grid, so are bounded (``|x|`` below
    ``BOUNDED_LOGITS``; exp cannot overflow): the softmax expectation without its max-shift, as
    one MatMul over the bins, ``[bins; ones] @ exp(x)``, then a division. No transpose, no
    softmax kernel: a third of the time (profiled: docs/results/design-measurements.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        weights = torch.stack([self.conv.weight.view(self.c1), torch.ones_like(self.conv.weight.view(self.c1))])
        sums = weights @ x.view(b, 4, self.c1, a).exp()  # (b, 4, 2, anchors): sum(bin * e), sum(e)
        return (sums[:, :, 0] / sums[:, :, 1]).view(b, 4, a)


BOUNDED_LOGITS = 80.0  # exp(80) is far from float32's limit (3.4e38 ~ exp(88.7)), even summed over 16 bins


def dfl_for(head: nn.Module) -> type[DFL]:
    """``BoundedDFL`` when the head's box logits sit on a quantizer's grid that keeps them below
    ``BOUNDED_LOGITS``, else ``LastAxisDFL`` (float logits: the max-shifted softmax)."""
    quantizer = getattr(head, "box_output_quantizer", None)
    if quantizer is None or not quantizer.quantizing:
        return LastAxisDFL
    low, high = quantizer.representable_range(quantizer.scale.detach().float())
    return BoundedDFL if float(torch.maximum(low.abs(), high.abs()).max()) < BOUNDED_LOGITS else LastAxisDFL


def heads_for_export(model: nn.Module, native_dfl: bool = False) -> None:
    """Every Detect head of ``model`` (in place) in ultralytics' ONNX export mode, with the DFL form
    its box logits allow; ``native_dfl`` keeps ultralytics' own (a softmax over the bins' axis and
    a 1x1 conv), which OpenVINO runs faster than either rewrite (profiled:
    docs/results/openvino-peer/README.md, "Speed")."""
    for module in model.modules():
        if isinstance(module, Detect):
            module.export, module.format, module.dynamic = True, "onnx", False
            if type(getattr(module, "dfl", None)) is DFL and not native_dfl:
                module.dfl.__class__ = dfl_for(module)

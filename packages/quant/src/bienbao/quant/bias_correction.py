"""Bias correction after weight quantization: ``correct_bias(model, forward_loop)``.

Rounding a conv's weights to their grid shifts the mean of every output channel by
``(W_q - W) @ E[x]`` (the rounding error applied to the mean input), a bias that the network then
carries into every later layer. Measuring each quantized conv's mean input on calibration data and
subtracting that shift from the bias it deploys with removes it: the empirical bias correction of
Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction" (2019), and
what NNCF's default "fast bias correction" does in its post-training quantization.

The shift is applied where it deploys unscaled: a ``QATConvBn2d``'s BatchNorm shift ``beta``
(it enters the folded bias as it is), a ``QATConv2d``'s bias (created if the conv has none). The
mean input is each channel's mean over the data, as if the input were spatially uniform: at the
border of a padded conv the kernel also reads zeros, an error of the order of the border's share
of the positions. Grouped convs, and BatchNorms without a shift, are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .fake_quantize import QuantizerNotReadyError
from .qat import QATConv2d, QATConvBn2d

__all__ = ["correct_bias"]


def _corrected_layers(model: nn.Module) -> dict[str, QATConv2d | QATConvBn2d]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (QATConv2d, QATConvBn2d))
        and module.weight_quantizer is not None
        and module.weight_quantizer.quantizing
        and module.groups == 1
        and (isinstance(module, QATConv2d) or (module.bn.affine and module.bn.bias is not None))
    }


@torch.no_grad()
def correct_bias(model: nn.Module, forward_loop: Callable[[nn.Module], object]) -> dict[str, float]:
    """Correct the bias of every conv with quantized weights for the mean shift its weight rounding
    causes, measured on the data ``forward_loop(model)`` runs (in eval mode, with the model's
    quantizers as they are: the inputs the deployed model sees). Run it after ``calibrate``.
    Returns each corrected layer's largest absolute shift."""
    layers = _corrected_layers(model)
    if not layers:
        raise ValueError("correct_bias: no conv has its weight quantizer on (prepare_qat and calibrate first)")
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().float()
            sums[name] = sums.get(name, 0) + x.sum(dim=(0, 2, 3))
            counts[name] += x.shape[0] * x.shape[2] * x.shape[3]

        return hook

    hooks = [module.register_forward_pre_hook(record(name)) for name, module in layers.items()]
    was_training = model.training
    model.eval()
    try:
        forward_loop(model)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    unseen = [name for name, count in counts.items() if count == 0]
    if unseen:
        raise QuantizerNotReadyError(
            f"correct_bias: {len(unseen)} layer(s) saw no data (e.g. {', '.join(unseen[:3])}); does forward_loop "
            "run the model on at least one batch?"
        )
    return {name: _correct(module, sums[name] / counts[name]) for name, module in layers.items()}


def _correct(module: QATConv2d | QATConvBn2d, mean_input: torch.Tensor) -> float:
    quantizer = module.weight_quantizer
    if quantizer is None:  # _corrected_layers keeps only layers with one
        raise ValueError("correct_bias: a layer without a weight quantizer")
    observing = quantizer.observing
    quantizer.enable_observer(False)  # rounding the weights must not move their range
    try:
        weight = module.float_weight()
        error = quantizer(weight) - weight
    finally:
        quantizer.enable_observer(observing)
    shift = error.sum(dim=(2, 3)) @ mean_input.to(error.dtype)  # (out_channels,)
    if isinstance(module, QATConvBn2d):
        module.bn.bias.sub_(shift)  # affine: _corrected_layers
    elif module.bias is None:
        module.bias = nn.Parameter(-shift)
    else:
        module.bias.sub_(shift)
    return float(shift.abs().max())

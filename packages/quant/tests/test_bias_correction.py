"""correct_bias: the mean output shift that weight rounding causes, measured and removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bienbao.quant import QATConvBn2d, calibrate, correct_bias, policy_from_dict, prepare_qat

#: weights only, on a coarse 3-bit grid: a large, easily measured rounding error
COARSE_WEIGHTS = policy_from_dict(
    {
        "default": {
            "weight": {"bits": 3, "symmetric": True, "granularity": "per_channel", "observer": {"name": "minmax"}}
        }
    }
)


def batches(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(4, 6, 12, 12, generator=generator) * 2 + 0.5 for _ in range(3)]  # mean 1.5: far from 0


def run(data):
    return lambda model: [model(x) for x in data]


def channel_means(model: nn.Module, data) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x) for x in data]).mean(dim=(0, 2, 3))


def net(kernel: int, bn: bool) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(6, 8, kernel, padding=kernel // 2, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(8))
        layers[1].running_mean.uniform_(-1, 1)
        layers[1].running_var.uniform_(0.5, 2)
        layers[1].bias.data.uniform_(-1, 1)
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("bn", [False, True])
def test_a_1x1_conv_keeps_the_float_mean_output_exactly(bn) -> None:
    """Without padding the correction is exact: the quantized model's mean output per channel on
    the calibration data equals the float model's, to float rounding."""
    float_net = net(1, bn)
    data = batches()
    qat = prepare_qat(float_net, COARSE_WEIGHTS, fuse=[["0", "1"]] if bn else ())
    assert isinstance(qat[0], QATConvBn2d) == bn
    calibrate(qat, run(data))
    reference = channel_means(float_net, data)
    before = (channel_means(qat, data) - reference).abs().max()
    assert before > 0.05  # 3-bit weights shift the mean visibly
    shifts = correct_bias(qat, run(data))
    assert list(shifts) == ["0"] and shifts["0"] == pytest.approx(float(before), rel=1e-4)
    assert (channel_means(qat, data) - reference).abs().max() < 1e-5


def test_a_padded_conv_is_corrected_up_to_its_border() -> None:
    """3x3 with padding: the border reads zeros, which the uniform mean does not see; on 12x12
    frames the error left is a fraction of the one corrected."""
    float_net = net(3, bn=False)
    data = batches()
    qat = prepare_qat(float_net, COARSE_WEIGHTS)
    calibrate(qat, run(data))
    reference = channel_means(float_net, data)
    before = (channel_means(qat, data) - reference).abs().max()
    correct_bias(qat, run(data))
    after = (channel_means(qat, data) - reference).abs().max()
    assert after < 0.25 * before
    held_out = batches(seed=1)  # and on data it was not measured on
    assert (channel_means(qat, held_out) - channel_means(float_net, held_out)).abs().max() < 0.25 * before


def test_the_weight_grid_and_the_switches_are_left_alone() -> None:
    qat = prepare_qat(net(1, bn=False), COARSE_WEIGHTS)
    calibrate(qat, run(batches()))
    quantizer = qat[0].weight_quantizer
    scale = quantizer.scale.clone()
    correct_bias(qat, run(batches(seed=2)))
    assert torch.equal(quantizer.scale, scale) and quantizer.quantizing and not quantizer.observing
    assert not qat.training


def test_a_model_without_quantized_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="no conv has its weight quantizer on"):
        correct_bias(net(1, bn=False), run(batches()))

"""QAT modules: every registry entry round-trips, forwards follow the reference formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bienbao.quant import QAT_MODULES, LayerQConfig, QATConv2d, QuantizerConfig, QuantScheme, get_preset
from bienbao.quant.scheme import PerChannel, reference_fake_quantize

FLOAT_EXAMPLES = {
    nn.Conv2d: lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
    nn.Linear: lambda: nn.Linear(5, 3),
}
INPUTS = {nn.Conv2d: lambda: torch.randn(2, 4, 9, 7), nn.Linear: lambda: torch.randn(3, 5)}
CONFIG = get_preset("tensorrt").default


def test_every_registered_float_type_has_an_example_here() -> None:
    assert set(QAT_MODULES) == set(FLOAT_EXAMPLES)


@pytest.mark.parametrize("float_type", list(QAT_MODULES), ids=lambda t: t.__name__)
def test_registry_entry_roundtrips_and_names_its_quantizers(float_type) -> None:
    module = FLOAT_EXAMPLES[float_type]()
    qat = QAT_MODULES[float_type].from_float(module, CONFIG)
    assert qat.weight is module.weight  # shared, not copied
    for role in ("input", "weight", "output"):
        assert hasattr(qat, f"{role}_quantizer")
    assert qat.output_quantizer is None
    x = INPUTS[float_type]()
    qat.input_quantizer.enable_fake_quant(False)
    qat.weight_quantizer.enable_fake_quant(False)
    assert torch.equal(qat(x), module(x))  # quantizers off: the float layer exactly
    back = qat.to_float()
    assert type(back) is float_type and back.weight is module.weight
    assert torch.equal(back(x), module(x))


def test_qat_conv_is_conv_of_fake_quantized_input_and_weight() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    config = LayerQConfig(
        input=QuantizerConfig(QuantScheme(8, symmetric=False, signed=False)),
        weight=QuantizerConfig(QuantScheme(4, granularity=PerChannel(0))),
        output=QuantizerConfig(QuantScheme(8, symmetric=False, signed=False)),
    )
    qat = QATConv2d.from_float(conv, config)
    x = torch.randn(2, 3, 8, 8)
    y = qat(x)
    iq, wq, oq = qat.input_quantizer, qat.weight_quantizer, qat.output_quantizer
    xq = reference_fake_quantize(x, iq.scale, iq.zero_point, 0, 255)
    wq_ = reference_fake_quantize(conv.weight, wq.scale, wq.zero_point, -8, 7, axis=0)
    expected = reference_fake_quantize(
        nn.functional.conv2d(xq, wq_, conv.bias, padding=1), oq.scale, oq.zero_point, 0, 255
    )
    assert torch.equal(y, expected)


def test_gradients_reach_the_float_weights() -> None:
    conv = nn.Conv2d(3, 4, 3)
    qat = QATConv2d.from_float(conv, CONFIG)
    qat(torch.randn(2, 3, 6, 6)).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0

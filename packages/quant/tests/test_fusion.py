"""Conv-BN folding (exact in eval) and the QAT Conv-BN that keeps training its statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bienbao.quant import FUSERS, QATConv2d, QATConvBn2d, fold_conv_bn, fold_linear_bn, fuse_modules, get_preset
from bienbao.quant.lifecycle import enable_fake_quant, enable_observers

EPS = 1e-5  # float32 rounding of a folded 3x3 conv of O(1) values


@pytest.fixture
def conv_bn(randomize_bn):
    def make(bias: bool = False) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        conv, bn = nn.Conv2d(3, 6, 3, padding=1, bias=bias), randomize_bn(nn.BatchNorm2d(6))
        return conv.eval(), bn.eval()

    return make


@pytest.mark.parametrize("bias", [False, True])
def test_folded_conv_equals_conv_then_bn_in_eval(bias: bool, conv_bn) -> None:
    conv, bn = conv_bn(bias)
    x = torch.randn(2, 3, 10, 12)
    fused = fold_conv_bn(conv, bn)
    assert torch.allclose(fused(x), bn(conv(x)), rtol=0, atol=EPS)


def test_folded_linear_equals_linear_then_bn_in_eval() -> None:
    linear, bn = nn.Linear(5, 4).eval(), nn.BatchNorm1d(4).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 5)
    assert torch.allclose(fold_linear_bn(linear, bn)(x), bn(linear(x)), rtol=0, atol=EPS)


def test_fuse_modules_walks_every_registered_pattern(small_net) -> None:
    assert set(FUSERS) == {(nn.Conv2d, nn.BatchNorm2d), (nn.Linear, nn.BatchNorm1d)}
    x = torch.randn(2, 3, 16, 16)
    expected = small_net(x)
    fuse_modules(small_net, [["conv1", "bn1", "act1"]])
    assert isinstance(small_net.bn1, nn.Identity) and isinstance(small_net.act1, nn.ReLU)
    assert torch.allclose(small_net(x), expected, rtol=0, atol=EPS)


def test_fuse_modules_refuses_unknown_patterns_and_names(small_net) -> None:
    with pytest.raises(ValueError, match="no fuser"):
        fuse_modules(small_net, [["conv1", "act1"]])
    with pytest.raises(ValueError, match="no submodule named 'nope'"):
        fuse_modules(small_net, [["nope", "bn1"]])


def test_qat_conv_bn_with_quantizers_off_is_the_float_pair(conv_bn) -> None:
    conv, bn = conv_bn()
    qat = QATConvBn2d.from_float(conv, nn.BatchNorm2d(6), get_preset("tensorrt").default)
    qat.bn.load_state_dict(bn.state_dict())
    enable_fake_quant(nn.Sequential(qat), False)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(qat.eval()(x), bn(conv(x)), rtol=0, atol=EPS)


def test_qat_conv_bn_training_updates_running_stats_and_uses_batch_stats(conv_bn) -> None:
    conv, bn = conv_bn()
    qat = QATConvBn2d.from_float(conv, bn, get_preset("tensorrt").default).train()
    enable_fake_quant(nn.Sequential(qat), False)
    before = qat.bn.running_mean.clone()
    x = torch.randn(8, 3, 8, 8) + 2.0
    y = qat(x)
    assert not torch.equal(qat.bn.running_mean, before)
    # batch statistics: every channel of the output is normalised (mean = beta)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), qat.bn.bias, atol=1e-4)

    qat.freeze_bn_stats()
    frozen = qat.bn.running_mean.clone()
    qat(x)
    assert torch.equal(qat.bn.running_mean, frozen)


def test_fold_at_export_equals_the_eval_forward_exactly(conv_bn) -> None:
    conv, bn = conv_bn(bias=True)
    qat = QATConvBn2d.from_float(conv, bn, get_preset("onnxruntime_cpu").default)
    qat.train()
    for _ in range(3):  # quantizers observe, BN stats move
        qat(torch.randn(4, 3, 8, 8))
    enable_observers(nn.Sequential(qat), False)  # ranges frozen, as convert() leaves them
    qat.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = qat(x)
        folded = qat.fold()
        assert isinstance(folded, QATConv2d) and folded.input_quantizer is qat.input_quantizer
        assert torch.allclose(folded(x), expected, rtol=0, atol=EPS)

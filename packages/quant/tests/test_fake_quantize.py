"""FakeQuantize: the native op against the textbook formula, switches, gradients, autocast."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from bienbao.quant import (
    FakeQuantize,
    MinMaxObserver,
    PerChannel,
    QuantizerNotReadyError,
    QuantScheme,
    reference_fake_quantize,
)

SCHEMES = [
    QuantScheme(8, symmetric=False, signed=False),
    QuantScheme(8, symmetric=True, signed=True),
    QuantScheme(8, symmetric=True, signed=False),
    QuantScheme(4, symmetric=True, signed=True, granularity=PerChannel(0)),
    QuantScheme(2, symmetric=False, signed=True, granularity=PerChannel(1)),
    QuantScheme(16, symmetric=True, signed=True, granularity=PerChannel(0)),
]


def make(scheme: QuantScheme, learnable: bool = False) -> FakeQuantize:
    return FakeQuantize(MinMaxObserver(scheme), learnable=learnable)


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_matches_the_reference_formula_exactly(scheme: QuantScheme) -> None:
    fq = make(scheme)
    x = torch.randn(6, 5, 4, 4) * 3
    y = fq(x)
    expected = reference_fake_quantize(x, fq.scale, fq.zero_point, scheme.quant_min, scheme.quant_max, scheme.axis)
    assert torch.equal(y, expected)  # zero tolerance: same arithmetic
    shape = [-1 if d == scheme.axis else 1 for d in range(x.dim())]
    scale, zero_point = fq.scale.reshape(shape), fq.zero_point.reshape(shape)
    codes = torch.round(y / scale) + zero_point
    assert codes.min() >= scheme.quant_min and codes.max() <= scheme.quant_max


def test_switches_are_independent() -> None:
    fq = make(QuantScheme(8, symmetric=False, signed=False))
    x = torch.randn(100)
    fq.enable_fake_quant(False)
    assert torch.equal(fq(x), x)  # observing only: pass-through, range recorded
    assert fq.observer.has_data and not fq.has_qparams

    fq.enable_fake_quant(True)
    fq(x)
    frozen = fq.scale.clone()
    fq.enable_observer(False)
    y = fq(x * 10)  # ranges frozen: the bigger tensor is clipped with the old scale
    assert torch.equal(fq.scale, frozen)
    assert y.max().item() <= frozen.item() * 255


def test_quantizing_without_a_range_names_the_remedy() -> None:
    fq = make(QuantScheme()).enable_observer(False)
    with pytest.raises(QuantizerNotReadyError, match="calibrate"):
        fq(torch.randn(3))


def test_straight_through_gradient_inside_the_range_zero_outside() -> None:
    fq = make(QuantScheme(8, symmetric=True, signed=True))
    fq(torch.tensor([-1.0, 1.0]))
    fq.enable_observer(False)
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 0.9, 5.0], requires_grad=True)
    fq(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("scheme", [QuantScheme(8), QuantScheme(8, granularity=PerChannel(0))], ids=str)
def test_learnable_scale_gets_an_lsq_scaled_gradient(scheme: QuantScheme) -> None:
    fq = make(scheme, learnable=True)
    x = torch.randn(4, 64)
    fq(x)  # first pass initialises the scale from the observer
    assert isinstance(fq.scale, torch.nn.Parameter)
    initial = fq.scale.detach().clone()
    fq.scale.grad = None
    y = fq(x * 2)  # later passes keep the learned scale (no overwrite by the observer)
    assert torch.equal(fq.scale.detach(), initial)
    y.sum().backward()
    assert fq.scale.grad is not None and torch.isfinite(fq.scale.grad).all()
    assert fq.scale.grad.abs().sum() > 0

    # the gradient is torch's LSQ gradient times 1 / sqrt(n * qmax)
    n = x.numel() if scheme.axis is None else x.numel() // x.shape[0]
    factor = 1.0 / math.sqrt(n * scheme.quant_max)
    scale = fq.scale.detach().clone().requires_grad_(True)
    zp = fq.zero_point.float()
    if scheme.axis is None:
        ref = torch._fake_quantize_learnable_per_tensor_affine(x * 2, scale.reshape(1), zp.reshape(1), -128, 127, 1.0)
    else:
        ref = torch._fake_quantize_learnable_per_channel_affine(x * 2, scale, zp, 0, -128, 127, 1.0)
    ref.sum().backward()
    assert torch.allclose(fq.scale.grad, scale.grad * factor, rtol=1e-5, atol=0)


def test_learnable_scale_keeps_the_quantizer_output_exact() -> None:
    fq = make(QuantScheme(8, symmetric=False, signed=False), learnable=True)
    x = torch.rand(50) * 4 - 1
    y = fq(x)
    expected = reference_fake_quantize(x, fq.scale.detach(), fq.zero_point, 0, 255)
    assert torch.allclose(y, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_quantizes_in_float32_under_autocast(dtype: torch.dtype) -> None:
    fq = make(QuantScheme(8, symmetric=False, signed=False))
    x = torch.randn(8, 16)
    fq(x)
    fq.enable_observer(False)
    low = x.to(dtype)
    with torch.autocast("cpu", dtype=dtype):
        y = fq(low)
    assert y.dtype == dtype
    assert fq.scale.dtype == torch.float32
    expected = reference_fake_quantize(low.float(), fq.scale, fq.zero_point, 0, 255).to(dtype)
    assert torch.equal(y, expected)


def test_state_dict_roundtrip_restores_switches_and_ranges() -> None:
    fq = make(QuantScheme(8, granularity=PerChannel(0)))
    fq(torch.randn(5, 7))
    fq.enable_observer(False)
    fresh = make(QuantScheme(8, granularity=PerChannel(0)))
    fresh.load_state_dict(fq.state_dict())
    assert not fresh.observing and fresh.quantizing
    assert torch.equal(fresh.scale, fq.scale) and torch.equal(fresh.zero_point, fq.zero_point)
    x = torch.randn(5, 7)
    assert torch.equal(fresh(x), fq(x))
    assert torch.equal(copy.deepcopy(fq)(x), fq(x))


@pytest.mark.parametrize("observer", ["minmax", "moving_average", "histogram"])
def test_state_is_updated_in_the_tensors_others_hold(observer: str) -> None:
    """ultralytics' EMA lists the model's state tensors once and averages towards them: updates
    (observing, and loading a state dict of the same shapes) must write into those tensors."""
    from bienbao.quant import OBSERVERS

    scheme = QuantScheme(8, symmetric=False, signed=False, granularity=PerChannel(0))
    fq = FakeQuantize(OBSERVERS[observer](scheme))
    fq(torch.randn(4, 9))
    held = [t for t in fq.state_dict(keep_vars=True).values() if t.dtype.is_floating_point]
    before = [t.clone() for t in held]
    fq(torch.randn(4, 9) * 5)  # a wider range: every float state tensor changes
    after = [t for t in fq.state_dict(keep_vars=True).values() if t.dtype.is_floating_point]
    assert all(a is b for a, b in zip(held, after, strict=True))
    assert all(not torch.equal(t, b) for t, b in zip(held, before, strict=True))
    other = FakeQuantize(OBSERVERS[observer](scheme))
    other(torch.randn(4, 9))
    held = list(other.state_dict(keep_vars=True).values())
    other.load_state_dict(fq.state_dict())
    assert all(a is b for a, b in zip(held, other.state_dict(keep_vars=True).values(), strict=True))
    assert torch.equal(other.scale, fq.scale) and torch.equal(other.zero_point, fq.zero_point)


def test_half_casts_leave_quantizer_state_in_float32() -> None:
    """ultralytics validates and checkpoints with model.half(): scales must not be rounded."""
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), make(QuantScheme(8, symmetric=False, signed=False)))
    module(torch.randn(3, 4) * 1.2345)
    scale = module[1].scale.clone()
    module.half()
    assert module[0].weight.dtype == torch.float16  # the layer itself is cast
    assert module[1].scale.dtype == torch.float32 and torch.equal(module[1].scale, scale)
    assert module[1].observer.min_val.dtype == torch.float32
    module.float()
    assert torch.equal(module[1].scale, scale)


def test_a_shared_quantizer_observes_its_inputs_together() -> None:
    from bienbao.quant import MovingAverageMinMaxObserver

    fq = FakeQuantize(MovingAverageMinMaxObserver(QuantScheme(8, symmetric=False, signed=False), 0.5))
    small, large = torch.rand(10) * 0.1, torch.rand(10) * 4.0 - 1.0
    out = fq.forward_shared([small, large])
    both = torch.cat([small, large])
    assert fq.observer.min_val.item() == both.min().item()  # one update, over both inputs
    assert fq.observer.max_val.item() == both.max().item()
    for given, got in zip([small, large], out, strict=True):
        assert torch.equal(got, reference_fake_quantize(given, fq.scale, fq.zero_point, 0, 255))
    with pytest.raises(ValueError, match="per-tensor"):
        make(QuantScheme(8, granularity=PerChannel(0))).forward_shared([small])


def test_reapply_keeps_values_on_the_grid_and_observes_nothing() -> None:
    fq = make(SCHEMES[0])
    out = fq(torch.randn(2, 8, 6, 6) * 3)
    state = {k: v.clone() for k, v in fq.state_dict().items()}
    half, pooled = out[:, :4], torch.nn.functional.max_pool2d(out, 3, 1, 1)
    assert torch.equal(fq.reapply(half), half)  # a slice and a max-pool stay on the grid
    assert torch.equal(fq.reapply(pooled), pooled)
    wider = torch.full((3,), 100.0)
    assert fq.reapply(wider).max() < 100  # outside the range: clamped, and the range stays put
    assert all(torch.equal(v, fq.state_dict()[k]) for k, v in state.items())
    fq.enable_fake_quant(False)
    assert fq.reapply(wider) is wider


def test_regrid_bits_keeps_the_grid_points_and_the_range() -> None:
    """7-bit weights to 8: every 7-bit value is an 8-bit value (the step halves), the clipping
    point stays; back to 7 gives the 7-bit result again."""
    from bienbao.quant import MinMaxObserver, PerChannel, QuantScheme

    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3)
    fq = FakeQuantize(MinMaxObserver(QuantScheme(7, granularity=PerChannel(0))))
    seven = fq(w)
    fq.enable_observer(False)
    fq.regrid_bits(8)
    assert fq.scheme.bits == 8 and fq.observer.scheme.bits == 8
    eight = fq(w)
    assert torch.equal(fq(seven), seven)  # the 7-bit values sit on the 8-bit grid
    low7, high7 = -64 * fq.scale * 2, 63 * fq.scale * 2
    assert (eight - w).abs().amax() <= (seven - w).abs().amax()  # finer, never worse
    assert float((eight - w).pow(2).sum()) < 0.5 * float((seven - w).pow(2).sum())
    assert torch.all(fq.representable_range()[0] <= low7.reshape(-1))
    assert torch.all(fq.representable_range()[1] >= high7.reshape(-1))
    fq.regrid_bits(7)
    assert torch.equal(fq(w), seven)
    with pytest.raises(ValueError, match="symmetric signed"):
        FakeQuantize(MinMaxObserver(QuantScheme(8, symmetric=False, signed=False))).regrid_bits(7)

"""QuantScheme: code ranges and (scale, zero_point) against hand-derived references."""

from __future__ import annotations

import pytest
import torch

from bienbao.quant import PerChannel, PerTensor, QuantScheme, reference_fake_quantize
from bienbao.quant.scheme import SCALE_EPS

INT8_SYM = QuantScheme(8, symmetric=True, signed=True)
UINT8_ASYM = QuantScheme(8, symmetric=False, signed=False)


def f32(numerator: float, denominator: float) -> float:
    """The division in float32, as the scheme does it (exact reference, zero tolerance)."""
    return (torch.tensor(numerator, dtype=torch.float32) / denominator).item()


def qp(scheme: QuantScheme, lo: float, hi: float) -> tuple[float, int]:
    scale, zero_point = scheme.qparams(torch.tensor(lo), torch.tensor(hi))
    return scale.item(), int(zero_point.item())


@pytest.mark.parametrize("bits", range(2, 17))
def test_code_ranges_for_every_bit_width(bits: int) -> None:
    assert QuantScheme(bits, signed=True).quant_min == -(2 ** (bits - 1))
    assert QuantScheme(bits, signed=True).quant_max == 2 ** (bits - 1) - 1
    assert QuantScheme(bits, signed=False).quant_min == 0
    assert QuantScheme(bits, signed=False).quant_max == 2**bits - 1


def test_symmetric_signed_int8_by_hand() -> None:
    # amax = max(|-2|, 3) = 3 ; scale = 3 / 127
    scale, zp = qp(INT8_SYM, -2.0, 3.0)
    assert scale == f32(3.0, 127)
    assert zp == 0


def test_symmetric_unsigned_puts_zero_in_the_middle() -> None:
    # codes 0..255, zero at 128, scale = amax / 127.5
    scale, zp = qp(QuantScheme(8, symmetric=True, signed=False), -1.0, 0.5)
    assert scale == f32(1.0, 127.5)
    assert zp == 128


def test_asymmetric_uint8_by_hand() -> None:
    # scale = (2 - (-1)) / 255 ; zp = 0 - round(-1 / scale) = round(85) = 85
    scale, zp = qp(UINT8_ASYM, -1.0, 2.0)
    assert scale == f32(3.0, 255)
    assert zp == 85


def test_asymmetric_int8_by_hand() -> None:
    # scale = (1 - (-3)) / 255 ; zp = -128 - round(-3 / scale) = -128 + round(191.25) = 63
    scale, zp = qp(QuantScheme(8, symmetric=False, signed=True), -3.0, 1.0)
    assert scale == f32(4.0, 255)
    assert zp == 63


def test_one_sided_positive_range_is_widened_to_zero() -> None:
    # [0.5, 2] -> [0, 2]: zero stays representable (zp = 0 for uint8 asym)
    scale, zp = qp(UINT8_ASYM, 0.5, 2.0)
    assert scale == f32(2.0, 255)
    assert zp == 0


def test_one_sided_negative_range_is_widened_to_zero() -> None:
    scale, zp = qp(UINT8_ASYM, -4.0, -1.0)
    assert scale == f32(4.0, 255)
    assert zp == 255


@pytest.mark.parametrize("scheme", [INT8_SYM, UINT8_ASYM, QuantScheme(4, symmetric=False, signed=True)])
def test_all_zero_range_gives_the_smallest_scale_and_exact_zero(scheme: QuantScheme) -> None:
    scale, zp = scheme.qparams(torch.tensor(0.0), torch.tensor(0.0))
    assert scale.item() == SCALE_EPS
    assert scheme.quant_min <= zp.item() <= scheme.quant_max
    restored = reference_fake_quantize(torch.zeros(3), scale, zp, scheme.quant_min, scheme.quant_max)
    assert torch.equal(restored, torch.zeros(3))


def test_constant_tensor_is_represented_exactly_at_the_range_end() -> None:
    value = 0.7
    scale, zp = UINT8_ASYM.qparams(torch.tensor(value), torch.tensor(value))
    restored = reference_fake_quantize(torch.tensor([value]), scale, zp, 0, 255)
    assert restored.item() == pytest.approx(value, abs=scale.item() / 2)


def test_per_channel_qparams_are_elementwise() -> None:
    scheme = QuantScheme(8, granularity=PerChannel(0))
    lo, hi = torch.tensor([-1.0, 0.0, -0.5]), torch.tensor([1.0, 2.0, 0.25])
    scale, zp = scheme.qparams(lo, hi)
    expected = torch.tensor([1.0, 2.0, 0.5]) / 127
    assert torch.equal(scale, expected)
    assert torch.equal(zp, torch.zeros(3, dtype=torch.int32))


def test_four_bit_weights_by_hand() -> None:
    scale, zp = qp(QuantScheme(4), -0.7, 0.7)
    assert scale == f32(0.7, 7)
    assert zp == 0


@pytest.mark.parametrize("bits", [0, 1, 17, 32])
def test_bad_bit_widths_are_refused_with_the_supported_range(bits: int) -> None:
    with pytest.raises(ValueError, match="2 to 16"):
        QuantScheme(bits)


def test_bad_types_are_refused() -> None:
    with pytest.raises(TypeError):
        QuantScheme(8.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="True or False"):
        QuantScheme(8, symmetric="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PerTensor"):
        QuantScheme(8, granularity="per_channel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        PerChannel(-1)


def test_describe() -> None:
    assert str(UINT8_ASYM) == "uint8 asym per-tensor"
    assert str(QuantScheme(4, granularity=PerChannel(0))) == "int4 sym per-channel(axis=0)"
    assert QuantScheme().granularity == PerTensor()

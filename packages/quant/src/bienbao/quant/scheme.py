"""Quantization schemes: how a float range maps to integer codes.

A scheme is a frozen value made of small independent choices: the bit width, symmetric or
asymmetric, signed or unsigned codes, and the granularity (per-tensor or per-channel along an
axis). ``QuantScheme.qparams(min_val, max_val)`` turns an observed range into ``(scale,
zero_point)``; the formulas are written out in the docstrings and tested against hand-derived
references.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["SCALE_EPS", "Granularity", "PerChannel", "PerTensor", "QuantScheme", "reference_fake_quantize"]

#: Smallest scale handed out. A range of width zero (an all-zero tensor) would otherwise give a
#: zero scale, which divides by zero in every quantizer.
SCALE_EPS = float(torch.finfo(torch.float32).eps)

MIN_BITS = 2
MAX_BITS = 16


@dataclass(frozen=True)
class PerTensor:
    """One ``(scale, zero_point)`` for the whole tensor."""

    def __str__(self) -> str:
        return "per-tensor"


@dataclass(frozen=True)
class PerChannel:
    """One ``(scale, zero_point)`` per slice along ``axis`` (axis 0 = output channels of a conv)."""

    axis: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.axis, int) or isinstance(self.axis, bool) or self.axis < 0:
            raise ValueError(
                f"PerChannel(axis={self.axis!r}): the axis must be a non-negative int "
                "(write axis=0 for the output channels of Conv2d/Linear weights)"
            )

    def __str__(self) -> str:
        return f"per-channel(axis={self.axis})"


Granularity = PerTensor | PerChannel


@dataclass(frozen=True)
class QuantScheme:
    """An integer grid: ``bits``, ``symmetric``, ``signed`` and ``granularity``.

    Codes run from ``quant_min`` to ``quant_max``: ``[-2**(b-1), 2**(b-1)-1]`` when signed,
    ``[0, 2**b-1]`` when unsigned.

    Every range is first widened to contain zero, so that zero (padding, ReLU floors) is exactly
    representable. Then, with ``qmin, qmax`` the code range:

    - symmetric, signed: ``scale = max(|min|, |max|) / qmax``, ``zero_point = 0``
      (TensorRT's convention: the positive end is not clipped, code ``qmin`` is unused);
    - symmetric, unsigned: ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)``,
      ``zero_point = (qmin + qmax + 1) // 2`` (128 for 8 bits: zero in the middle of the codes);
    - asymmetric: ``scale = (max - min) / (qmax - qmin)``,
      ``zero_point = clamp(qmin - round(min / scale), qmin, qmax)``.

    A scale below ``SCALE_EPS`` (a range of width zero) is raised to ``SCALE_EPS``.
    """

    bits: int = 8
    symmetric: bool = True
    signed: bool = True
    granularity: Granularity = field(default_factory=PerTensor)

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or isinstance(self.bits, bool):
            raise TypeError(f"QuantScheme(bits={self.bits!r}): bits must be an int from {MIN_BITS} to {MAX_BITS}")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(
                f"QuantScheme(bits={self.bits}): supported bit widths are {MIN_BITS} to {MAX_BITS} "
                "(8 for activations; 2-16 for weights in mixed-precision experiments)"
            )
        for name in ("symmetric", "signed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"QuantScheme({name}={getattr(self, name)!r}): write True or False")
        if not isinstance(self.granularity, (PerTensor, PerChannel)):
            raise TypeError(f"QuantScheme(granularity={self.granularity!r}): write PerTensor() or PerChannel(axis=...)")

    # -- code range ---------------------------------------------------------------------------
    @property
    def quant_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def quant_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def per_channel(self) -> bool:
        return isinstance(self.granularity, PerChannel)

    @property
    def axis(self) -> int | None:
        return self.granularity.axis if isinstance(self.granularity, PerChannel) else None

    # -- range -> (scale, zero_point) ---------------------------------------------------------
    def qparams(self, min_val: torch.Tensor, max_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale float32, zero_point int32)`` for an observed range, same shape as ``min_val``."""
        min_val = torch.clamp(min_val.detach().float(), max=0.0)  # widen the range to contain zero
        max_val = torch.clamp(max_val.detach().float(), min=0.0)
        qmin, qmax = self.quant_min, self.quant_max
        if self.symmetric:
            amax = torch.maximum(-min_val, max_val)
            if self.signed:
                scale = torch.clamp(amax / qmax, min=SCALE_EPS)
                zero_point = torch.zeros_like(scale, dtype=torch.int32)
            else:
                scale = torch.clamp(amax / ((qmax - qmin) / 2), min=SCALE_EPS)
                zero_point = torch.full_like(scale, (qmin + qmax + 1) // 2, dtype=torch.int32)
            return scale, zero_point
        scale = torch.clamp((max_val - min_val) / (qmax - qmin), min=SCALE_EPS)
        zero_point = torch.clamp(qmin - torch.round(min_val / scale), qmin, qmax).to(torch.int32)
        return scale, zero_point

    def describe(self) -> str:
        """Short human form, e.g. ``int8 sym per-channel(axis=0)``."""
        kind = "int" if self.signed else "uint"
        return f"{kind}{self.bits} {'sym' if self.symmetric else 'asym'} {self.granularity}"

    def __str__(self) -> str:
        return self.describe()


def reference_fake_quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    quant_min: int,
    quant_max: int,
    axis: int | None = None,
) -> torch.Tensor:
    """The textbook formula ``(clamp(round(x / s) + z, qmin, qmax) - z) * s`` (round half to even).

    Written out by hand: the reference the native op is tested against, and the quantize-dequantize
    used where no module is involved (the histogram observer's MSE search, analysis tools).
    """
    if axis is not None:
        shape = [1] * x.dim()
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    scale = scale.float()
    zero_point = zero_point.float()
    codes = torch.clamp(torch.round(x * (1.0 / scale)) + zero_point, quant_min, quant_max)
    return (codes - zero_point) * scale

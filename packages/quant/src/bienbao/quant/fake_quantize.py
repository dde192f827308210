"""FakeQuantize: an observer plus torch's native fake-quantize op, with two independent switches.

- ``observing``: feed every tensor to the observer and refresh ``(scale, zero_point)`` from it;
- ``quantizing``: quantize-dequantize the tensor (otherwise it passes through unchanged).

So training can calibrate first (observing only), quantize later (both), and freeze ranges at
the end (quantizing only). Gradients are straight-through (inside the range) from torch's op; with
``learnable=True`` the scale is a parameter trained LSQ-style through
``torch._fake_quantize_learnable_per_*_affine`` with the gradient scale ``1/sqrt(n * qmax)``.

Quantization always runs in float32: under float16/bfloat16 autocast the input is upcast, and the
result cast back to the input's dtype, so scales are never rounded to half precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._state import KeepStateDtype, LoadsSavedState, set_state
from .observers import Observer
from .scheme import SCALE_EPS

__all__ = ["FakeQuantize", "QuantizerNotReadyError"]


class QuantizerNotReadyError(RuntimeError):
    """Raised when a quantizer is asked to quantize before it has a range."""


class FakeQuantize(KeepStateDtype, LoadsSavedState, nn.Module):
    scale: torch.Tensor  # a buffer, or an nn.Parameter when learnable
    zero_point: torch.Tensor
    observer_enabled: torch.Tensor
    fake_quant_enabled: torch.Tensor

    def __init__(self, observer: Observer, *, learnable: bool = False) -> None:
        super().__init__()
        self.observer = observer
        self.scheme = observer.scheme
        self.learnable = learnable
        if learnable:
            self.scale = nn.Parameter(torch.empty(0))
        else:
            self.register_buffer("scale", torch.empty(0))
        self.register_buffer("zero_point", torch.empty(0, dtype=torch.int32))
        # uint8 flags, as buffers, so the switches are saved with the checkpoint
        self.register_buffer("observer_enabled", torch.tensor(1, dtype=torch.uint8))
        self.register_buffer("fake_quant_enabled", torch.tensor(1, dtype=torch.uint8))

    # -- switches -----------------------------------------------------------------------------
    @property
    def observing(self) -> bool:
        return bool(self.observer_enabled.item())

    @property
    def quantizing(self) -> bool:
        return bool(self.fake_quant_enabled.item())

    def enable_observer(self, enabled: bool = True) -> FakeQuantize:
        self.observer_enabled.fill_(int(enabled))
        return self

    def enable_fake_quant(self, enabled: bool = True) -> FakeQuantize:
        self.fake_quant_enabled.fill_(int(enabled))
        return self

    @property
    def has_qparams(self) -> bool:
        return self.scale.numel() > 0

    # -- qparams ------------------------------------------------------------------------------
    @torch.no_grad()
    def update_qparams(self) -> None:
        """Copy ``(scale, zero_point)`` from the observer (raises if it has seen nothing)."""
        scale, zero_point = self.observer.compute_qparams()
        scale = scale.to(self._qparam_device())
        if self.learnable:
            self.scale.data = scale.clone()
        else:
            set_state(self, "scale", scale.clone())
        set_state(self, "zero_point", zero_point.to(scale.device))

    def _qparam_device(self) -> torch.device:
        return self.observer_enabled.device

    @torch.no_grad()
    def regrid_bits(self, bits: int) -> FakeQuantize:
        """The same grid at ``bits`` wide: the step scaled by ``2 ** (old_bits - bits)``.

        For symmetric signed (weight) quantizers. Going wider, every old grid point stays on the
        new grid (code ``c`` becomes ``c * 2**k``) and the range and its learned or calibrated
        clipping stay where they were: 7-bit QAT weights become 8-bit codes with half the step.
        Going narrower coarsens the step by the same factor (the top code may clip by a step).
        """
        from dataclasses import replace

        if not (self.scheme.symmetric and self.scheme.signed):
            raise ValueError(
                f"regrid_bits: {self.scheme} is not symmetric signed (a weight grid); "
                "an asymmetric grid cannot be refined by a power of two around zero"
            )
        if not self.has_qparams:
            raise QuantizerNotReadyError("regrid_bits: this quantizer has no range yet")
        factor = 2.0 ** (self.scheme.bits - bits)
        scheme = replace(self.scheme, bits=bits)
        self.scheme = self.observer.scheme = scheme
        self.scale.data = self.scale.data * factor
        return self

    # -- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observer(x)
        return self._quantize_observed(x) if self.quantizing else x

    def forward_shared(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Quantize several tensors on one grid (the inputs of a Concat or an Add).

        The observer sees them together, once (a moving average fed each input separately
        would average their extremes instead of covering all of them). Per-tensor schemes only.
        """
        if self.scheme.per_channel:
            raise ValueError("a shared quantizer must be per-tensor: per-channel ranges differ between inputs")
        if self.observing:
            self.observer(torch.cat([t.detach().reshape(-1) for t in tensors]))
        if not self.quantizing:
            return list(tensors)
        first = self._quantize_observed(tensors[0])
        return [first, *(self._quantize(t) for t in tensors[1:])]

    def reapply(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize ``x`` on the current grid without observing it.

        For values that are already on this grid (a slice, a max-pool or an upsampling of this
        quantizer's output): numerically a no-op, but an exported graph then re-states the grid
        after the op, so a runtime can run that op on the integers.
        """
        return self._quantize(x) if self.quantizing else x

    def _quantize_observed(self, x: torch.Tensor) -> torch.Tensor:
        """Refresh qparams from the observer if observing, then quantize."""
        if self.observing and not (self.learnable and self.has_qparams):
            # a learnable scale is initialised from the observer, then trained, not overwritten
            self.update_qparams()
        return self._quantize(x)

    def _quantize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_qparams:
            raise QuantizerNotReadyError(
                "this quantizer has no range yet: calibrate the model (bienbao.quant.calibrate) or "
                "run forward passes with observing enabled before enabling fake quantization"
            )
        if x.dtype == torch.float32:  # the common case: no casts (none in an exported graph)
            return self._fake_quantize(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._fake_quantize(x.float()).to(x.dtype)

    def _fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        qmin, qmax = self.scheme.quant_min, self.scheme.quant_max
        axis = self.scheme.axis
        if self.learnable and not torch.onnx.is_in_onnx_export():
            scale = torch.clamp(self.scale, min=SCALE_EPS)
            zero_point = self.zero_point.float()
            n = x.numel() if axis is None else x.numel() // x.shape[axis]
            grad_factor = 1.0 / math.sqrt(max(n, 1) * qmax)
            if axis is None:
                return torch._fake_quantize_learnable_per_tensor_affine(  # wants shape (1,)
                    x, scale.reshape(1), zero_point.reshape(1), qmin, qmax, grad_factor
                )
            return torch._fake_quantize_learnable_per_channel_affine(
                x, scale, zero_point, axis, qmin, qmax, grad_factor
            )
        scale = self.scale.detach() if self.learnable else self.scale
        if self.scheme.bits < 8 and torch.onnx.is_in_onnx_export():
            x, qmin, qmax = self._in_int8_container(x, scale)
        if axis is None:
            return torch.fake_quantize_per_tensor_affine(x, scale, self.zero_point, qmin, qmax)
        return torch.fake_quantize_per_channel_affine(x, scale, self.zero_point, axis, qmin, qmax)

    # -- state ---------------------------------------------------------------------------------
    def _data_shaped(self) -> tuple[str, ...]:
        return ("scale", "zero_point")  # per-channel: as long as the first tensor seen

    def extra_repr(self) -> str:
        state = (
            ", ".join(name for name, on in (("observing", self.observing), ("quantizing", self.quantizing)) if on)
            or "off"
        )
        learn = ", learnable" if self.learnable else ""
        return f"{self.scheme}{learn}, {state}"

    def representable_range(self, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``: the float values the grid holds, per channel (shaped like the scale).
        ``scale`` stands in for ``self.scale`` (a detached learnable one, at export)."""
        scale = self.scale if scale is None else scale
        zero_point = self.zero_point.float()
        return (self.scheme.quant_min - zero_point) * scale, (self.scheme.quant_max - zero_point) * scale

    def _in_int8_container(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Narrow codes (2-7 bits) exported as int8/uint8 Q/DQ, the only widths ONNX export takes.

        Clamping to the narrow grid's float range first makes the 8-bit op give exactly the
        narrow result; on constant weights the exporter folds the clamp away.
        """
        shape = [1] * x.dim()
        if self.scheme.axis is not None:
            shape[self.scheme.axis] = -1
        low, high = (bound.reshape(shape) for bound in self.representable_range(scale))
        container = (-128, 127) if self.scheme.signed else (0, 255)
        return torch.clamp(x, low, high), *container

"""The observer protocol and the pieces every observer shares.

An observer watches tensors (no grad, detached, empty-safe) and turns what it saw into
``(scale, zero_point)`` through its scheme. Its state lives in registered buffers, so it saves,
loads, deep-copies and is broadcast by DDP, and is updated in place (``set_state``). Per-channel
buffers get their length from the first tensor seen; loading a state dict resizes them to the
saved shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from .._state import KeepStateDtype, LoadsSavedState
from ..scheme import QuantScheme

__all__ = ["OBSERVERS", "Observer", "ObserverNotReadyError", "channel_rows", "register_observer"]


class ObserverNotReadyError(RuntimeError):
    """Raised when qparams are asked of an observer that has not seen any data."""


class Observer(KeepStateDtype, LoadsSavedState, nn.Module):
    """Base class: ``forward(x)`` observes ``x`` and returns it unchanged.

    Subclasses implement ``_observe(rows)`` (``rows`` is the tensor as ``(channels, -1)``,
    one row for per-tensor schemes) and ``_range()`` returning ``(min_val, max_val)`` shaped
    like the qparams.
    """

    name: ClassVar[str]
    #: Buffers whose shape follows the data (resized on state-dict load).
    _lazy_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, scheme: QuantScheme) -> None:
        super().__init__()
        self.scheme = scheme
        for buffer in self._lazy_buffers:
            self.register_buffer(buffer, torch.empty(0))

    # -- protocol -----------------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() > 0:
            self._observe(channel_rows(x.detach().float(), self.scheme.axis))
        return x

    def compute_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, zero_point)`` from what was observed; raises if nothing was."""
        if not self.has_data:
            raise ObserverNotReadyError(
                f"{type(self).__name__} has seen no data: run calibration (or a forward pass with "
                "observing enabled) before asking for scale and zero_point"
            )
        min_val, max_val = self._range()
        scale, zero_point = self.scheme.qparams(min_val, max_val)
        if not self.scheme.per_channel:
            scale, zero_point = scale.reshape(()), zero_point.reshape(())
        return scale, zero_point

    def reset(self) -> None:
        """Forget everything observed."""
        for buffer in self._lazy_buffers:
            setattr(self, buffer, torch.empty(0, device=getattr(self, buffer).device))

    @property
    def has_data(self) -> bool:
        return all(getattr(self, b).numel() > 0 for b in self._lazy_buffers)

    # -- subclass hooks -----------------------------------------------------------------------
    def _observe(self, rows: torch.Tensor) -> None:
        raise NotImplementedError

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _check_channels(self, rows: torch.Tensor, current: torch.Tensor) -> None:
        if current.numel() > 0 and current.shape[0] != rows.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: saw {rows.shape[0]} channels along axis {self.scheme.axis} "
                f"after {current.shape[0]} before; one observer watches one tensor shape"
            )

    # -- state ---------------------------------------------------------------------------------
    def _data_shaped(self) -> tuple[str, ...]:
        return self._lazy_buffers

    def extra_repr(self) -> str:
        return f"scheme={self.scheme}"


def channel_rows(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """``x`` as ``(1, -1)`` (per-tensor) or ``(channels along axis, -1)`` (per-channel)."""
    if axis is None:
        return x.reshape(1, -1)
    if axis >= x.dim():
        raise ValueError(f"per-channel axis {axis} does not exist in a tensor of shape {tuple(x.shape)}")
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


#: Observer name (as written in configs) -> class.
OBSERVERS: dict[str, type[Observer]] = {}


def register_observer(name: str) -> Callable[[type[Observer]], type[Observer]]:
    def decorate(cls: type[Observer]) -> type[Observer]:
        if name in OBSERVERS:
            raise ValueError(f"observer {name!r} is registered twice")
        cls.name = name
        OBSERVERS[name] = cls
        return cls

    return decorate

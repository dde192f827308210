"""Quantizer state: it keeps its dtype when the model around it is cast, and its tensors.

``model.half()`` (ultralytics validates and checkpoints in half precision) would otherwise round
scales, zero points and observed ranges to float16. Device moves still apply.

Updates write into the existing tensors (``set_state``) rather than replacing them: whoever holds
a model's tensors sees the new values. ultralytics' ``ModelEMA`` is such a holder (it lists the
model's floating tensors once, on its first update); with replaced tensors the EMA copy of a QAT
model kept averaging towards the ranges of its first training step while its weights moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["KeepStateDtype", "LoadsSavedState", "set_state"]


def set_state(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Buffer ``name`` of ``module`` takes ``value``: written in place (in the buffer's dtype) when
    the shape is the same, so the tensor object stays the one others hold; replaced on a first
    value or a new shape (per-channel state takes its length from the first tensor seen)."""
    current = getattr(module, name)
    if current.shape == value.shape:
        with torch.no_grad():
            current.copy_(value)
    else:
        setattr(module, name, value.to(current.device))


def resize_for_load(module: nn.Module, name: str, saved: torch.Tensor) -> None:
    """Before a state-dict load: give buffer ``name`` the saved shape, keeping the tensor when the
    shape already matches (the load then copies into it)."""
    current = getattr(module, name)
    if current.shape != saved.shape:
        if isinstance(current, nn.Parameter):
            current.data = torch.empty_like(saved, device=current.device)
        else:
            setattr(module, name, torch.empty_like(saved, device=current.device))


class KeepStateDtype(nn.Module):
    """Mixin: ``_apply`` (``.to``, ``.half()``, ``.cuda()``...) moves this module's tensors but
    never changes their dtype; the original values are moved, not a rounded copy."""

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> nn.Module:
        def keep_dtype(tensor: torch.Tensor) -> torch.Tensor:
            moved = fn(tensor)
            return moved if moved.dtype == tensor.dtype else tensor.to(device=moved.device)

        moved: nn.Module = super()._apply(keep_dtype, recurse)  # type: ignore[no-untyped-call]  # untyped in torch
        return moved


class LoadsSavedState(nn.Module):
    """Mixin: a state dict or a pickle (an ultralytics checkpoint) saved by this module loads into it
    when the data shaped some of its tensors (per-channel ranges take their length from the first
    tensor seen: ``_data_shaped`` are resized to the saved shape first) and when it was saved by a
    version without some of today's buffers (``_added_state`` gives each one's stand-in value, as
    BatchNorm fills ``num_batches_tracked``)."""

    def _data_shaped(self) -> tuple[str, ...]:
        return ()

    def _added_state(self) -> dict[str, torch.Tensor]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[no-untyped-call]  # untyped in torch
        for buffer, value in self._added_state().items():
            if buffer not in self._buffers:
                self.register_buffer(buffer, value)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        for buffer, value in self._added_state().items():
            state_dict.setdefault(prefix + buffer, value)
        for name in self._data_shaped():
            if prefix + name in state_dict:
                resize_for_load(self, name, state_dict[prefix + name])
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

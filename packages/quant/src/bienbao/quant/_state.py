"""Quantizer state keeps its dtype when the model around it is cast.

``model.half()`` (ultralytics validates and checkpoints in half precision) would otherwise round
scales, zero points and observed ranges to float16. Device moves still apply.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["KeepStateDtype"]


class KeepStateDtype(nn.Module):
    """Mixin: ``_apply`` (``.to``, ``.half()``, ``.cuda()``...) moves this module's tensors but
    never changes their dtype; the original values are moved, not a rounded copy."""

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True):
        def keep_dtype(tensor: torch.Tensor) -> torch.Tensor:
            moved = fn(tensor)
            return moved if moved.dtype == tensor.dtype else tensor.to(device=moved.device)

        return super()._apply(keep_dtype, recurse)

"""The protocol every backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the backend registry is imported by the CLI's argument parsers: keep it light
    import numpy as np

    from ..metadata import ModelMetadata

__all__ = ["Backend"]


class Backend(Protocol):
    name: str
    #: The file's own metadata (``None`` for a file that is not a bienbao export).
    metadata: ModelMetadata | None
    #: Network input (height, width).
    input_size: tuple[int, int]

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 RGB in [0, 1] -> raw output ``(N, 4 + nc, anchors)`` float32."""
        ...

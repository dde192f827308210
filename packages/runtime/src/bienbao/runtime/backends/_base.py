"""The protocol every backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the backend registry is imported by the CLI's argument parsers: keep it light
    import numpy as np

    from ..metadata import ModelMetadata

__all__ = ["Backend", "checked_threads"]


def checked_threads(threads: int | None) -> int | None:
    """A backend's thread count: at least 1, at most four per core (more only waits on itself:
    100000 threads would take minutes to start, with nothing said)."""
    import os

    if threads is None:
        return None
    cores = os.cpu_count() or 1
    if not 1 <= threads <= 4 * cores:
        raise ValueError(f"threads={threads}: give 1 to {4 * cores} (this machine has {cores} cores)")
    return threads


class Backend(Protocol):
    name: str
    #: The file's own metadata (``None`` for a file that is not a bienbao export).
    metadata: ModelMetadata | None
    #: Network input (height, width).
    input_size: tuple[int, int]

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 RGB in [0, 1] -> raw output ``(N, 4 + nc, anchors)`` float32."""
        ...

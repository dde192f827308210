"""Network input sizes: one definition of what a size is and how a camera's aspect becomes one.

Torch-free (the config loader and the CLI's parsers use it).
"""

from __future__ import annotations

__all__ = ["ImageSize", "input_size", "parse_aspect", "rect_size"]

#: an export's input size: one side (square) or (height, width)
ImageSize = int | tuple[int, int] | list[int]


def input_size(imgsz: ImageSize) -> tuple[int, int]:
    """``640`` -> ``(640, 640)``; ``(384, 640)`` stays (height, width). Each side a multiple of 32
    (the network's stride), at least 32."""
    size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise ValueError(f"imgsz {imgsz!r}: one size (square) or two, height and width, e.g. 384 640")
    if any(v < 32 or v % 32 for v in size):
        raise ValueError(f"imgsz {imgsz!r}: each side a multiple of 32 (the network's stride), e.g. 384 640")
    return size


def rect_size(long_side: int, aspect: tuple[int, int] = (16, 9)) -> tuple[int, int]:
    """(height, width) for a camera of ``aspect`` (width:height) with ``long_side`` pixels across:
    the short side rounded up to the stride, so the letterbox pads as little as it can
    (640 at 16:9 -> 384 x 640: a 640x360 frame fills 94 % of it instead of 56 % of 640 x 640)."""
    width, height = aspect
    if width <= 0 or height <= 0:
        raise ValueError(f"aspect {width}:{height}: two positive numbers, width:height (16:9)")
    exact = -(-long_side * min(width, height) // max(width, height))  # ceil
    short = max(32, -(-exact // 32) * 32)
    return input_size((short, long_side) if width >= height else (long_side, short))


def parse_aspect(text: str) -> tuple[int, int]:
    """``"16:9"`` -> ``(16, 9)`` (width:height)."""
    width, sep, height = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(width), int(height)
    except ValueError:
        raise ValueError(f"aspect {text!r}: write width:height, e.g. 16:9") from None

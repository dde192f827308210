"""Pre-processing identical to ultralytics' letterbox, as a pure function with a typed result.

``preprocess(frame, (h, w))`` resizes a BGR frame keeping its aspect ratio (bilinear, like
ultralytics' ``LetterBox``), pads it centred with grey 114 to the network size, converts it to RGB
NCHW float32 in [0, 1] and returns the ``Letterbox`` that maps boxes back to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._deps import require

__all__ = ["Letterbox", "letterbox", "preprocess"]

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``source`` (h, w) was placed into the network input of ``target`` (h, w)."""

    source: tuple[int, int]
    target: tuple[int, int]
    gain: float
    pad_x: int  # left padding
    pad_y: int  # top padding

    @classmethod
    def fit(cls, source: tuple[int, int], target: tuple[int, int]) -> Letterbox:
        height, width = source
        gain = min(target[0] / height, target[1] / width)
        new_w, new_h = max(round(width * gain), 1), max(round(height * gain), 1)
        dw, dh = (target[1] - new_w) / 2, (target[0] - new_h) / 2
        return cls(source, target, gain, round(dw - 0.1), round(dh - 0.1))

    @property
    def resized(self) -> tuple[int, int]:
        """(h, w) of the frame inside the padding."""
        return max(round(self.source[0] * self.gain), 1), max(round(self.source[1] * self.gain), 1)

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` xyxy boxes in network pixels -> frame pixels, clipped to the frame."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.gain
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.gain
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.source[1])
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.source[0])
        return out

    def to_target(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` xyxy boxes in frame pixels -> network pixels (the inverse of ``to_source``)."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, [0, 2]] = boxes[:, [0, 2]] * self.gain + self.pad_x
        out[:, [1, 3]] = boxes[:, [1, 3]] * self.gain + self.pad_y
        return out


def letterbox(frame: np.ndarray, target: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """The padded HWC uint8 image and its ``Letterbox`` (no colour or layout change)."""
    cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR frame, got shape {frame.shape}")
    box = Letterbox.fit(frame.shape[:2], target)
    new_h, new_w = box.resized
    image = (
        frame
        if (new_h, new_w) == frame.shape[:2]
        else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )
    bottom = target[0] - new_h - box.pad_y
    right = target[1] - new_w - box.pad_x
    image = cv2.copyMakeBorder(image, box.pad_y, bottom, box.pad_x, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return image, box


def preprocess(frame: np.ndarray, target: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """BGR HxWx3 uint8 frame -> (1x3xHxW float32 RGB in [0, 1], Letterbox)."""
    image, box = letterbox(frame, target)
    tensor = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
    tensor *= 1.0 / 255.0
    return tensor, box

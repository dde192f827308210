"""What the benchmarks compare bienbao against, built by the scripts themselves (one definition).

- ``quantize_static_peer``: ONNX Runtime's own post-training quantization of an FP32 ONNX file
  (``quant_pre_process`` then ``quantize_static``: QDQ, uint8 activations, int8 per-channel
  weights, min-max calibration), the INT8 path every ONNX Runtime user has.
- ``calibration_frames``, ``letterbox``: frames of a dataset split with the deployed
  pre-processing (``bienbao.runtime``), so every model sees the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bienbao.runtime.preprocess import preprocess

__all__ = ["calibration_frames", "letterbox", "quantize_static_peer"]


def letterbox(path: Path, size: int) -> np.ndarray:
    return preprocess(cv2.imread(str(path)), (size, size))[0]


def calibration_frames(data: Path, split: str, count: int) -> list[Path]:
    """``count`` images spread evenly over ``split`` of a dataset YAML."""
    from bienbao.trainer.evaluation.evaluate import split_images

    images = split_images(data, split)
    return images[:: max(1, len(images) // count)][:count]


def quantize_static_peer(fp32: Path, frames: list[Path], out: Path, size: int) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{"images": letterbox(p, size)} for p in frames])

        def get_next(self):
            return next(self._batches, None)

    out.mkdir(parents=True, exist_ok=True)
    pre, static = out / "quantize_static_pre.onnx", out / "quantize_static_u8.onnx"
    quant_pre_process(str(fp32), str(pre))
    quantize_static(
        str(pre),
        str(static),
        Frames(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return static

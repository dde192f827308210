"""LiteRT (TFLite) backend: ``ai-edge-litert``, or ``tflite-runtime`` on boards that have only that.

An INT8 model's input may be int8/uint8: the float image is quantized with that tensor's own
scale and zero point, and int8/uint8 outputs are dequantized with theirs. NCHW and NHWC inputs
are both accepted (a converter may have moved the channels last). The CPU runs it through the
interpreter's default XNNPACK delegate; ``threads`` sets its thread count (default: every core,
as ONNX Runtime does; the interpreter's own default is one thread).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import MissingDependencyError, require
from ..metadata import MetadataError, ModelMetadata
from ._base import checked_threads

__all__ = ["LiteRTBackend", "dequantize", "quantize"]

INTEGER_TYPES = (np.int8, np.uint8, np.int16)


def _interpreter_class() -> Any:
    try:
        return require("ai_edge_litert.interpreter", "tflite").Interpreter
    except MissingDependencyError as litert_missing:
        try:  # the older, smaller package some boards ship
            return require("tflite_runtime.interpreter", "tflite").Interpreter
        except MissingDependencyError:
            raise litert_missing from None


def _scale_zero_point(detail: dict[str, Any]) -> tuple[float, int]:
    params = detail.get("quantization_parameters") or {}
    scales, zero_points = params.get("scales"), params.get("zero_points")
    if scales is not None and len(scales) > 1:
        raise ValueError(
            f"tensor {detail['name']!r} is quantized per channel: not a model input or output this backend can feed"
        )
    if scales is not None and len(scales) == 1 and zero_points is not None:
        return float(scales[0]), int(zero_points[0])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        raise ValueError(
            f"tensor {detail['name']!r} is {np.dtype(detail['dtype']).name} without quantization "
            "parameters: cannot convert it from or to float"
        )
    return float(scale), int(zero_point)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """float -> integer codes of ``dtype`` (round half to even, as TFLite's QUANTIZE does)."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class LiteRTBackend:
    name = "litert"

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        threads = checked_threads(threads) or os.cpu_count() or 1
        self.interpreter = _interpreter_class()(model_path=str(model_path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.metadata: ModelMetadata | None
        try:
            self.metadata = ModelMetadata.read_sidecar(model_path)
        except MetadataError:
            if ModelMetadata.sidecar_path(model_path).exists():
                raise  # present but broken or from a newer bienbao: say so, do not guess
            self.metadata = None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"{model_path} has {len(inputs)} inputs: a detector takes one image")
        self._input = inputs[0]
        shape = tuple(int(d) for d in self._input["shape"])
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ValueError(f"{model_path} takes an input of shape {shape}: not an image model (N, 3, H, W)")
        self.channels_last = shape[3] == 3 and shape[1] != 3
        self.input_size = shape[1:3] if self.channels_last else shape[2:4]
        self._input_quant = (
            _scale_zero_point(self._input) if np.dtype(self._input["dtype"]).type in INTEGER_TYPES else None
        )
        self._outputs = self.interpreter.get_output_details()
        if len(self._outputs) != 1:
            raise ValueError(
                f"{model_path} has {len(self._outputs)} outputs: the runtime reads one "
                "(N, 4 + classes, anchors) output, as bienbao exports it"
            )
        output = self._outputs[0]
        self._output_quant = _scale_zero_point(output) if np.dtype(output["dtype"]).type in INTEGER_TYPES else None
        self.input_dtype = np.dtype(self._input["dtype"])

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        if tensor.ndim != 4:
            raise ValueError(f"input of shape {tensor.shape}: (N, 3, H, W) expected")
        if tensor.shape[0] > 1:  # the exported graph has a fixed batch of 1
            return np.concatenate([self.infer(frame[None]) for frame in tensor])
        if self.channels_last:
            tensor = tensor.transpose(0, 2, 3, 1)
        if self._input_quant is not None:
            tensor = quantize(tensor, *self._input_quant, self.input_dtype)
        self.interpreter.set_tensor(self._input["index"], np.ascontiguousarray(tensor, dtype=self.input_dtype))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._outputs[0]["index"])
        return dequantize(out, *self._output_quant) if self._output_quant is not None else out.astype(np.float32)

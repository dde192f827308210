"""OpenVINO backend: the same ONNX files (FP32 or Q/DQ INT8) on Intel CPUs and OpenVINO's ARM
plugin, torch-free (``bienbao-runtime[openvino]``).

OpenVINO reads the ONNX file itself (Q/DQ pairs become its low-precision graph; an FP32 file runs
in bf16 on CPUs with AMX by default). The file's bienbao metadata comes through OpenVINO's
``rt_info["framework"]``. ``threads`` sets ``INFERENCE_NUM_THREADS``; the latency hint is used
(one frame at a time, as a camera delivers). ``precision`` is what the compiled model reports as
its inference precision (f32, bf16, f16): the figure a benchmark must be traced to.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bienbao.cli.errors import first_line

from .._deps import require
from ..metadata import METADATA_KEY, ModelMetadata
from ..precision import weight_width_plan

__all__ = ["OpenVINOBackend"]


class OpenVINOBackend:
    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        device: str = "CPU",
        precision: str | None = None,
        cpu: dict[str, Any] | None = None,
    ) -> None:
        """``precision`` overrides OpenVINO's choice (``f32`` keeps an FP32 file out of bf16); ``cpu``
        (default this machine's) is what the file's weight width is checked against."""
        ov = require("openvino", "openvino")
        core = ov.Core()
        try:
            model = core.read_model(str(model_path))
        except Exception as exc:  # OpenVINO's own error types: one line that names the file
            raise ValueError(f"{model_path}: not a model OpenVINO can load ({first_line(exc)})") from exc
        self.metadata = None
        if model.has_rt_info(["framework", METADATA_KEY]):
            self.metadata = ModelMetadata.from_json(model.get_rt_info(["framework", METADATA_KEY]).astype(str))
        if self.metadata is not None and device == "CPU":
            from bienbao.cli.cpu import describe_cpu

            plan = weight_width_plan("openvino", self.metadata.quantization.weight_bits, cpu or describe_cpu())
            if plan.note:
                warnings.warn(plan.note, RuntimeWarning, stacklevel=2)
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4:
            raise ValueError(
                f"{model_path}: its input has shape {shape}; a detector takes images of shape (1, 3, height, width)"
            )
        if shape.is_static:
            height, width = int(shape[2].get_length()), int(shape[3].get_length())
        elif self.metadata is not None:
            height, width = self.metadata.imgsz
            model.reshape([1, 3, height, width])
        else:
            raise ValueError(f"{model_path} has a dynamic input size and no metadata")
        self.input_size = (height, width)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads={threads}: at least 1")
            config["INFERENCE_NUM_THREADS"] = threads
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = core.compile_model(model, device, config)
        self._request = self.compiled.create_infer_request()
        self._output = self.compiled.outputs[0]
        self.device = device
        self.precision = (
            str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").replace("'>", "")
        )
        self.provider = f"{device}, {self.precision}"  # what backend_label shows: openvino (CPU, f32)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        self._request.infer({0: tensor})
        return np.asarray(self._request.get_tensor(self._output).data, dtype=np.float32).copy()

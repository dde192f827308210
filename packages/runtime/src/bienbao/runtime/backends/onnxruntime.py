"""ONNX Runtime backend: CPU by default, CUDA / TensorRT execution providers when asked for.

The intra-op thread pool does not spin by default: a spinning pool keeps the cores busy after
each run, which starves the capture thread of ``bienbao detect`` and whatever runs next; ``spin=True``
buys a few percent when ONNX Runtime runs alone (figures: docs/results/design-measurements.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bienbao.core.errors import first_line

from .._deps import require
from ..metadata import METADATA_KEY, ModelMetadata
from ..precision import WeightWidthPlan, weight_width_plan
from ._base import checked_threads

__all__ = ["OnnxRuntimeBackend"]


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        providers: list[str] | None = None,
        spin: bool = False,
        cpu: dict[str, Any] | None = None,
    ) -> None:
        """``cpu`` (``bienbao.core.cpu.describe_cpu()``'s form, default this machine's) decides the
        kernels for the file's weight width (``bienbao.runtime.precision``)."""
        ort = require("onnxruntime", "onnxruntime")
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if checked_threads(threads) is not None:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        providers = providers or ["CPUExecutionProvider"]
        missing = [p for p in providers if p not in available]
        if missing:
            raise ValueError(f"ONNX Runtime here has no {', '.join(missing)} (available: {', '.join(available)})")
        self.session = _session(ort, model_path, options, providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_json(meta[METADATA_KEY]) if METADATA_KEY in meta else None
        self.weight_plan = _plan(self.metadata, cpu, providers)
        if self.weight_plan.session_config:  # the kernels depend on the file's weight width: a second session
            for key, value in self.weight_plan.session_config.items():
                options.add_session_config_entry(key, value)
            self.session = _session(ort, model_path, options, providers)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        if len(model_input.shape) != 4:
            raise ValueError(
                f"{model_path}: its input {model_input.name!r} has shape {model_input.shape}; a detector "
                "takes images of shape (1, 3, height, width)"
            )
        height, width = model_input.shape[2:4]
        if not (isinstance(height, int) and isinstance(width, int)):
            if self.metadata is None:
                raise ValueError(f"{model_path} has a dynamic input size and no metadata: give imgsz")
            height, width = self.metadata.imgsz
        self.input_size = (height, width)
        self.providers = self.session.get_providers()
        self.provider = self.providers[0]  # the one that runs the graph (ONNX Runtime falls back in order)
        if self.weight_plan.exact_kernels:
            self.provider += ", exact u8u8"  # what backend_label shows, so a figure says which kernels ran

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor})[0]


def _session(ort: Any, model_path: str | Path, options: Any, providers: list[str]) -> Any:
    try:
        return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as exc:  # ONNX Runtime's own error types (InvalidProtobuf, Fail...): one line, the file named
        raise ValueError(f"{model_path}: not a model ONNX Runtime can load ({first_line(exc)})") from exc


def _plan(metadata: ModelMetadata | None, cpu: dict[str, Any] | None, providers: list[str]) -> WeightWidthPlan:
    if metadata is None or providers[0] != "CPUExecutionProvider":
        return WeightWidthPlan()  # CUDA / TensorRT providers: exact int8 products
    if cpu is None:
        from bienbao.core.cpu import describe_cpu

        cpu = describe_cpu()
    plan = weight_width_plan("onnxruntime", metadata.quantization.weight_bits, cpu)
    import warnings

    if plan.note:
        warnings.warn(plan.note, RuntimeWarning, stacklevel=3)
    layout = metadata.quantization.target
    if layout in OTHER_RUNTIMES_LAYOUTS:
        better = "; this one runs best on OpenVINO (--backend openvino)" if layout == "openvino" else ""
        warnings.warn(
            f"this file is in the {layout} layout ({OTHER_RUNTIMES_LAYOUTS[layout]}): ONNX Runtime fuses a conv into "
            "its integer QLinearConv only with a QuantizeLinear right after it, which this layout does not have, "
            "so most convs run in float here (measured: 6 of 63 fused, half FP32's speed). For ONNX Runtime use a "
            f"file of the onnxruntime layout{better}",
            RuntimeWarning,
            stacklevel=3,
        )
    return plan


#: layouts made for another runtime, and what they quantize instead of every conv output
OTHER_RUNTIMES_LAYOUTS = {
    "tensorrt": "symmetric int8 on conv inputs, for TensorRT",
    "openvino": "uint8 after each block's activation, for OpenVINO",
}

"""OpenVINO backend: ONNX files (FP32 or Q/DQ INT8) and OpenVINO IR (``.xml`` + ``.bin``, and the
``*_openvino_model/`` folders ultralytics exports) on x86 CPUs and OpenVINO's ARM plugin,
torch-free (``bienbao-runtime[openvino]``).

OpenVINO reads an ONNX file itself (Q/DQ pairs become FakeQuantize, its low-precision graph); an
IR is read as written. The metadata comes from bienbao's own key in the model's ``rt_info``
(``["framework", "bienbao"]``: where OpenVINO puts an ONNX file's ``metadata_props``, and where
``bienbao export --format openvino`` writes it), else from the ``metadata.yaml`` ultralytics
writes beside its IR (names, input size, stride: parsed with ``yaml.safe_load``), so a user's
ultralytics export runs through the same pre-processing, decoding and NMS as bienbao's files.

``threads`` sets ``INFERENCE_NUM_THREADS``; the latency hint is used (one frame at a time, as a
camera delivers). ``precision`` is OpenVINO's ``INFERENCE_PRECISION_HINT`` for the float parts:
``None`` lets OpenVINO choose (bf16 on CPUs with AVX512-BF16 or AMX, f32 elsewhere), ``f32``
keeps them in f32. ``self.precision`` is what the compiled model reports: the figure a benchmark
must be traced to.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bienbao.core.errors import first_line

from .._deps import require
from ..metadata import METADATA_KEY, MetadataError, ModelMetadata, Quantization
from ..precision import weight_width_plan
from . import PRECISIONS
from ._base import checked_threads

__all__ = ["OpenVINOBackend", "ir_path", "ultralytics_metadata"]


def ir_path(model_path: str | Path) -> Path:
    """The file OpenVINO reads: ``model_path`` itself, or the one ``.xml`` in an IR folder."""
    path = Path(model_path)
    if not path.is_dir():
        return path
    found = sorted(path.glob("*.xml"))
    if len(found) != 1:
        raise ValueError(f"{path}: an OpenVINO IR folder holds one .xml file (and its .bin), found {len(found)}")
    return found[0]


def ultralytics_metadata(xml: Path, model: Any) -> ModelMetadata | None:
    """ultralytics' ``metadata.yaml`` beside an IR as bienbao metadata (``None`` if there is none).

    INT8 is read off the graph (FakeQuantize nodes), not off the export arguments."""
    path = xml.parent / "metadata.yaml"
    if not path.is_file():
        return None
    yaml = require("yaml", "openvino", "ultralytics' metadata.yaml is YAML")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = data["names"]
        ordered = tuple(str(names[i]) for i in sorted(names)) if isinstance(names, dict) else tuple(map(str, names))
        imgsz = data["imgsz"]
        size = (int(imgsz), int(imgsz)) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))
        convs = [op for op in model.get_ops() if op.get_type_name() == "Convolution"]
        integer = sum(conv.input_value(0).get_node().get_type_name() == "FakeQuantize" for conv in convs)
        quantization = (
            Quantization(
                "openvino",
                "uint8 asymmetric per-tensor (NNCF)",
                "int8 symmetric per-channel (NNCF)",
                quantized_layers=integer,
                float_layers=len(convs) - integer,
                weight_bits=8,
            )
            if integer
            else Quantization()
        )
        return ModelMetadata(
            names=ordered,
            imgsz=size,
            stride=int(data.get("stride", 32)),
            task=str(data.get("task", "detect")),
            quantization=quantization,
            source=str(data.get("description", "")),
            producer=f"ultralytics {data.get('version', '')}".strip(),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MetadataError(f"{path}: not an ultralytics metadata file bienbao can read ({first_line(exc)})") from exc


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
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: write one of {', '.join(PRECISIONS)}")
        core = ov.Core()
        xml = ir_path(model_path)
        try:
            model = core.read_model(str(xml))
        except Exception as exc:  # OpenVINO's own error types: one line that names the file
            raise ValueError(f"{model_path}: not a model OpenVINO can load ({first_line(exc)})") from exc
        self.metadata = _metadata(xml, model)
        if self.metadata is not None and device == "CPU":
            from bienbao.core.cpu import describe_cpu

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
        if checked_threads(threads) is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = core.compile_model(model, device, config)
        self._request = self.compiled.create_infer_request()
        self._output = self.compiled.outputs[0]
        self.device = device
        self.precision = _short(str(self.compiled.get_property("INFERENCE_PRECISION_HINT")))
        self.provider = f"{device}, {self.precision}"  # what backend_label shows: openvino (CPU, f32)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        self._request.infer({0: tensor})
        return np.asarray(self._request.get_tensor(self._output).data, dtype=np.float32).copy()


def _metadata(xml: Path, model: Any) -> ModelMetadata | None:
    """bienbao's own (an ONNX file's ``metadata_props``, or an IR bienbao wrote), else ultralytics'."""
    if model.has_rt_info(["framework", METADATA_KEY]):
        return ModelMetadata.from_json(model.get_rt_info(["framework", METADATA_KEY]).astype(str))
    return ultralytics_metadata(xml, model) if xml.suffix.lower() == ".xml" else None


def _short(precision: str) -> str:
    """OpenVINO's element type as its hint spells it: ``<Type: 'bfloat16'>`` -> ``bf16``."""
    text = precision.replace("<Type: '", "").replace("'>", "")
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(text, text)

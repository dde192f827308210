"""The metadata every bienbao export carries, so the runtime needs nothing else to run it.

It travels as JSON: in an ONNX file's ``metadata_props`` under the key ``bienbao``, and as a
sidecar ``<model>.json`` next to files whose format has no such place (TensorRT engines,
TFLite). It is parsed and validated, never evaluated; ``SCHEMA_VERSION`` changes when a field's
meaning does, and a reader refuses a version it does not know.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bienbao.core.files import atomic_write_text

__all__ = ["METADATA_KEY", "SCHEMA_VERSION", "MetadataError", "ModelMetadata", "Quantization"]

SCHEMA_VERSION = 1
METADATA_KEY = "bienbao"
TARGETS = ("fp32", "onnxruntime", "openvino", "tensorrt", "tflite")


class MetadataError(ValueError):
    """The metadata is missing, of an unknown schema version, or malformed (the message says which)."""


@dataclass(frozen=True)
class Quantization:
    """How the file is quantized: ``target`` and the activation and weight formats."""

    target: str = "fp32"
    activations: str = "float"  # "uint8 asymmetric per-tensor", "int8 symmetric per-tensor", "float"
    weights: str = "float"  # e.g. "int8 symmetric per-channel (7-bit codes)"
    quantized_layers: int = 0
    float_layers: int = 0
    #: the widest integer weight codes in the file (7 or 8; 0 = float weights or an older file):
    #: 7-bit codes keep ONNX Runtime's u8s8 kernels on x86 without VNNI from saturating (see
    #: ``bienbao.runtime.precision``)
    weight_bits: int = 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise MetadataError(f"quantization target {self.target!r}: expected one of {', '.join(TARGETS)}")
        if self.weight_bits not in (0, *range(2, 9)):
            raise MetadataError(f"quantization weight_bits {self.weight_bits!r}: 0 (float) or 2 to 8")


@dataclass(frozen=True)
class ModelMetadata:
    names: tuple[str, ...]
    imgsz: tuple[int, int]  # (height, width) of the network input
    stride: int = 32
    task: str = "detect"
    quantization: Quantization = field(default_factory=Quantization)
    source: str = ""  # the checkpoint it was exported from
    source_sha256: str = ""
    producer: str = "bienbao"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise MetadataError(
                f"metadata schema version {self.schema_version} is not {SCHEMA_VERSION}: re-export the model "
                "with this bienbao version, or install the bienbao-runtime that matches the exporter"
            )
        if self.task != "detect":
            raise MetadataError(f"task {self.task!r}: bienbao runs detection models only")
        if not self.names or not all(isinstance(n, str) for n in self.names):
            raise MetadataError("metadata names must be a non-empty list of class names")
        if len(self.imgsz) != 2 or any(not isinstance(v, int) or v <= 0 or v % self.stride for v in self.imgsz):
            raise MetadataError(f"imgsz {self.imgsz}: two positive multiples of the stride {self.stride}")

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ModelMetadata:
        if not isinstance(data, dict):
            raise MetadataError(f"metadata must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetadataError(f"unknown metadata field(s) {', '.join(unknown)}")
        try:
            values = dict(data)
            values["names"] = tuple(values["names"])
            values["imgsz"] = tuple(values["imgsz"])
            values["quantization"] = Quantization(**values.get("quantization", {}))
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise MetadataError(f"malformed metadata: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise MetadataError(f"metadata is not valid JSON: {exc}") from exc

    @staticmethod
    def sidecar_path(model_path: str | Path) -> Path:
        return Path(model_path).with_suffix(".json")

    def write_sidecar(self, model_path: str | Path) -> Path:
        path = self.sidecar_path(model_path)
        atomic_write_text(path, self.to_json() + "\n")  # a half-written sidecar would refuse its model
        return path

    @classmethod
    def read_sidecar(cls, model_path: str | Path) -> ModelMetadata:
        path = cls.sidecar_path(model_path)
        if not path.is_file():
            raise MetadataError(f"{model_path} has no metadata sidecar {path.name}: not a bienbao export")
        return cls.from_json(path.read_text(encoding="utf-8"))

"""Inference backends behind one small protocol, one per module, imported lazily by name.

``load_backend(name, model_path, **options)``; ``name="auto"`` picks by file suffix
(``.onnx`` -> onnxruntime, ``.xml`` or an ``*_openvino_model/`` folder -> openvino,
``.engine``/``.plan`` -> tensorrt, ``.tflite`` -> litert). A backend whose package is not
installed raises ``MissingDependencyError`` naming the extra to install. ``onnxruntime-cuda`` and
``onnxruntime-tensorrt`` are ONNX Runtime with its CUDA or TensorRT execution provider first
(``openvino`` runs the same ``.onnx`` files with OpenVINO, chosen by name)
(onnxruntime-gpu, as on a Jetson); the provider that actually runs is the backend's ``provider``.
``split_options`` tells which options (``threads``...) a backend takes, so a caller can say which
it ignores instead of crashing on them.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._base import Backend

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "BackendSpec",
    "backend_for_path",
    "backend_label",
    "load_backend",
    "split_options",
]


@dataclass(frozen=True)
class BackendSpec:
    target: str  # "module:class", imported only when asked for
    defaults: dict[str, Any] = field(default_factory=dict)

    def load_class(self) -> type:
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)


_ORT = "bienbao.runtime.backends.onnxruntime:OnnxRuntimeBackend"
#: Backend name -> how to build it.
BACKENDS = {
    "onnxruntime": BackendSpec(_ORT),
    "onnxruntime-cuda": BackendSpec(_ORT, {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}),
    "onnxruntime-tensorrt": BackendSpec(
        _ORT, {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}
    ),
    "openvino": BackendSpec("bienbao.runtime.backends.openvino:OpenVINOBackend"),
    "tensorrt": BackendSpec("bienbao.runtime.backends.tensorrt:TensorRTBackend"),
    "litert": BackendSpec("bienbao.runtime.backends.litert:LiteRTBackend"),
}
#: OpenVINO's inference precision hints for the float parts of a model (``--precision``)
PRECISIONS = ("f32", "bf16", "f16")
SUFFIXES = {
    ".onnx": "onnxruntime",
    ".xml": "openvino",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".tflite": "litert",
}
#: a model that is a folder, by the end of its name: OpenVINO IR as ultralytics exports it
FOLDER_SUFFIXES = {"_openvino_model": "openvino"}


def is_model_path(model_path: str | Path) -> bool:
    """A model file, or a model that is a folder (an OpenVINO IR folder as ultralytics exports it)."""
    path = Path(model_path)
    return path.is_file() or (path.is_dir() and path.name.endswith(tuple(FOLDER_SUFFIXES)))


def model_size_bytes(model_path: str | Path) -> int:
    """Bytes on disk: the file, an OpenVINO IR's ``.xml`` with its ``.bin``, or every file of a
    model folder."""
    path = Path(model_path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    weights = path.with_suffix(".bin")
    return path.stat().st_size + (weights.stat().st_size if path.suffix == ".xml" and weights.is_file() else 0)


def backend_for_path(model_path: str | Path) -> str:
    path = Path(model_path)
    if path.is_dir():
        for ending, name in FOLDER_SUFFIXES.items():
            if path.name.endswith(ending):
                return name
        raise ValueError(
            f"{model_path} is a folder: bienbao runs a model file, or an OpenVINO IR folder named "
            f"*{', *'.join(FOLDER_SUFFIXES)} (as ultralytics exports it)"
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the backend of {model_path}: name it (one of {', '.join(BACKENDS)}) "
            f"or use a file ending in {', '.join(SUFFIXES)}"
        )
    return SUFFIXES[suffix]


def _resolve(name: str, model_path: str | Path) -> str:
    name = backend_for_path(model_path) if name == "auto" else name
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: write one of auto, {', '.join(BACKENDS)}")
    return name


def split_options(name: str, model_path: str | Path, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``options`` the backend (``auto``: by suffix) takes, and the names of those it does not."""
    accepted = inspect.signature(BACKENDS[_resolve(name, model_path)].load_class()).parameters
    taken = {k: v for k, v in options.items() if k in accepted}
    return taken, sorted(set(options) - set(taken))


def load_backend(name: str, model_path: str | Path, **options: Any) -> Backend:
    path = Path(model_path)
    if not path.is_file() and not (path.is_dir() and _resolve(name, path) in FOLDER_SUFFIXES.values()):
        raise FileNotFoundError(f"model file not found: {model_path}")
    spec = BACKENDS[_resolve(name, model_path)]
    return spec.load_class()(model_path, **{**spec.defaults, **options})


def backend_label(backend: Backend) -> str:
    """What ran: the backend, and its execution provider where it has one (``onnxruntime (CPUExecutionProvider)``)."""
    provider = getattr(backend, "provider", None)
    return f"{backend.name} ({provider})" if provider else backend.name

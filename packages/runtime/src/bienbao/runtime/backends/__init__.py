"""Inference backends behind one small protocol, one per module, imported lazily by name.

``load_backend(name, model_path, **options)``; ``name="auto"`` picks by file suffix
(``.onnx`` -> onnxruntime, ``.engine``/``.plan`` -> tensorrt, ``.tflite`` -> litert). A backend whose package is not
installed raises ``MissingDependencyError`` naming the extra to install.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._base import Backend

__all__ = ["BACKENDS", "Backend", "backend_for_path", "load_backend"]

#: Backend name -> "module:class" (imported only when asked for).
BACKENDS = {
    "onnxruntime": "bienbao.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "bienbao.runtime.backends.tensorrt:TensorRTBackend",
    "litert": "bienbao.runtime.backends.litert:LiteRTBackend",
}
SUFFIXES = {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt", ".tflite": "litert"}


def backend_for_path(model_path: str | Path) -> str:
    suffix = Path(model_path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot tell the backend of {model_path}: name it (one of {', '.join(BACKENDS)}) "
                         f"or use a file ending in {', '.join(SUFFIXES)}")
    return SUFFIXES[suffix]


def load_backend(name: str, model_path: str | Path, **options) -> Backend:
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    name = backend_for_path(model_path) if name == "auto" else name
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: write one of auto, {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(model_path, **options)

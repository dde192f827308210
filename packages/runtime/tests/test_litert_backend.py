"""The LiteRT backend's own logic: quantizing the image and dequantizing outputs with each tensor's
parameters, and the errors. Its run on real exported files is in the trainer's TFLite tests
(``nox -s tflite``: exporting needs litert-torch)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bienbao.runtime._deps import MissingDependencyError
from bienbao.runtime.backends import backend_for_path, load_backend
from bienbao.runtime.backends.litert import _scale_zero_point, dequantize, quantize


def test_tflite_files_go_to_litert() -> None:
    assert backend_for_path("signs_int8.tflite") == "litert"


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_rounds_half_to_even_and_saturates(dtype) -> None:
    scale, zero_point = 1 / 255, -128 if dtype is np.int8 else 0
    x = np.array([0.0, 0.5 / 255, 1.5 / 255, 1.0, 2.0, -1.0], np.float32)
    q = quantize(x, scale, zero_point, dtype)
    info = np.iinfo(dtype)
    expected = np.clip(np.array([0, 0, 2, 255, 510, -255]) + zero_point, info.min, info.max)
    assert q.dtype == dtype and q.tolist() == expected.tolist()
    inside = x[:4]
    error = np.abs(dequantize(quantize(inside, scale, zero_point, dtype), scale, zero_point) - inside)
    assert error.max() <= scale / 2 * (1 + 1e-5)  # exact halves round either way


def test_tensor_parameters_are_read_or_refused() -> None:
    per_tensor = {
        "name": "images",
        "dtype": np.int8,
        "quantization": (0.5, 3),
        "quantization_parameters": {"scales": np.array([0.5]), "zero_points": np.array([3])},
    }
    assert _scale_zero_point(per_tensor) == (0.5, 3)
    legacy = {"name": "images", "dtype": np.int8, "quantization": (0.25, -1)}
    assert _scale_zero_point(legacy) == (0.25, -1)
    with pytest.raises(ValueError, match="per channel"):
        _scale_zero_point({**per_tensor, "quantization_parameters": {"scales": np.ones(4), "zero_points": np.zeros(4)}})
    with pytest.raises(ValueError, match="without quantization parameters"):
        _scale_zero_point({"name": "images", "dtype": np.int8, "quantization": (0.0, 0)})


def test_a_missing_interpreter_names_the_extra(monkeypatch, tmp_path) -> None:
    model = tmp_path / "signs.tflite"
    model.write_bytes(b"TFL3")
    for module in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # as if neither package were installed
    with pytest.raises(MissingDependencyError, match=r"bienbao-runtime\[tflite\]"):
        load_backend("auto", model)

"""Weight width against the CPU: the plan per backend and CPU kind, and the ONNX Runtime session
that follows it (exact u8u8 kernels for 8-bit weights on x86 without VNNI, a note otherwise)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bienbao.runtime.backends.onnxruntime import OnnxRuntimeBackend
from bienbao.runtime.metadata import MetadataError, ModelMetadata, Quantization
from bienbao.runtime.precision import u8s8_saturates, weight_width_plan

ZEN3 = {"name": "AMD EPYC 7B13", "arch": "x86_64", "isa": ["avx2"]}
SAPPHIRE_RAPIDS = {"name": "Intel Xeon", "arch": "x86_64", "isa": ["avx2", "avx512", "avx512_vnni", "amx_int8"]}
ALDER_LAKE = {"name": "Intel Core", "arch": "x86_64", "isa": ["avx2", "avx_vnni"]}
ORIN = {"name": "Cortex-A78AE", "arch": "aarch64", "isa": ["neon", "dotprod"]}


def test_only_x86_without_vnni_saturates() -> None:
    assert u8s8_saturates(ZEN3)
    assert not any(u8s8_saturates(cpu) for cpu in (SAPPHIRE_RAPIDS, ALDER_LAKE, ORIN))


@pytest.mark.parametrize(
    ("backend", "bits", "cpu", "exact", "note"),
    [
        ("onnxruntime", 8, ZEN3, True, "exact u8u8"),
        ("onnxruntime", 7, ZEN3, False, None),
        ("onnxruntime", 8, SAPPHIRE_RAPIDS, False, None),
        ("onnxruntime", 7, SAPPHIRE_RAPIDS, False, "more accurate"),
        ("onnxruntime", 7, ORIN, False, "more accurate"),
        ("openvino", 8, ZEN3, False, "may saturate"),
        ("openvino", 7, ALDER_LAKE, False, "more accurate"),
        ("onnxruntime", 0, ZEN3, False, None),  # float weights: nothing to say
    ],
)
def test_the_plan_per_backend_and_cpu(backend, bits, cpu, exact, note) -> None:
    plan = weight_width_plan(backend, bits, cpu)
    assert plan.exact_kernels is exact
    assert (plan.note is None) if note is None else (note in plan.note)


def test_weight_bits_round_trip_through_the_metadata() -> None:
    meta = ModelMetadata(names=("a",), imgsz=(640, 384), quantization=Quantization("onnxruntime", weight_bits=8))
    assert ModelMetadata.from_json(meta.to_json()).quantization.weight_bits == 8
    old = meta.to_json().replace(', "weight_bits": 8', "")  # a file exported before the field existed
    assert ModelMetadata.from_json(old).quantization.weight_bits == 0
    with pytest.raises(MetadataError, match="weight_bits"):
        Quantization("onnxruntime", weight_bits=12)


def test_an_8bit_file_gets_exact_kernels_on_x86_without_vnni(tmp_path, brightness_model) -> None:
    path = brightness_model(tmp_path / "w8.onnx", quantization=Quantization("onnxruntime", weight_bits=8))
    with pytest.warns(RuntimeWarning, match="x64quantprecision=1"):
        backend = OnnxRuntimeBackend(path, cpu=ZEN3)
    assert backend.weight_plan.exact_kernels and "exact u8u8" in backend.provider
    assert backend.session.get_session_options().get_session_config_entry("session.x64quantprecision") == "1"
    image = np.full((1, 3, 320, 320), 0.5, np.float32)
    assert backend.infer(image)[0, 4, 0] == pytest.approx(0.5)  # and it still runs


def test_a_7bit_file_warns_where_8_bits_would_be_exact(tmp_path, brightness_model) -> None:
    path = brightness_model(tmp_path / "w7.onnx", quantization=Quantization("onnxruntime", weight_bits=7))
    with pytest.warns(RuntimeWarning, match="8-bit file"):
        backend = OnnxRuntimeBackend(path, cpu=SAPPHIRE_RAPIDS)
    assert not backend.weight_plan.exact_kernels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right file on the right CPU: silent
        assert OnnxRuntimeBackend(path, cpu=ZEN3).provider == "CPUExecutionProvider"

"""TensorRT engine building: everything around TensorRT here; the build itself where TensorRT is."""

from __future__ import annotations

import importlib.util
import shlex

import onnx
import pytest
from onnx import TensorProto, helper

from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata, Quantization
from bienbao.trainer.export.tensorrt_engine import EngineBuildError, build_engine, trtexec_command

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def tiny_onnx(path, target: str | None) -> str:
    node = helper.make_node("Relu", ["images"], ["output0"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if target is not None:
        meta = ModelMetadata(names=("a",), imgsz=(32, 32), quantization=Quantization(target))
        model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    onnx.save(model, str(path))
    return str(path)


def test_trtexec_command_matches_the_builder_settings() -> None:
    weak = shlex.split(trtexec_command("m.onnx", "m.engine"))
    assert weak[:3] == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine"]
    assert "--int8" in weak and "--fp16" in weak and "--memPoolSize=workspace:2048M" in weak
    strong = shlex.split(trtexec_command("m.onnx", "m.engine", strongly_typed=True))
    assert "--stronglyTyped" in strong and "--int8" not in strong and "--fp16" not in strong


def test_refuses_files_that_are_not_tensorrt_exports(tmp_path) -> None:
    with pytest.raises(EngineBuildError, match="not a bienbao export"):
        build_engine(tiny_onnx(tmp_path / "plain.onnx", None), tmp_path / "x.engine")
    with pytest.raises(EngineBuildError, match="--target tensorrt"):
        build_engine(tiny_onnx(tmp_path / "ort.onnx", "onnxruntime"), tmp_path / "x.engine")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here: the missing-TensorRT message is not reachable")
def test_missing_tensorrt_says_where_it_comes_from(tmp_path) -> None:
    with pytest.raises(EngineBuildError, match="JetPack"):
        build_engine(tiny_onnx(tmp_path / "trt.onnx", "tensorrt"), tmp_path / "x.engine")


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installable on these machines (Jetson/CUDA only)")
def test_builds_an_engine_with_a_metadata_sidecar(tmp_path) -> None:
    engine = build_engine(tiny_onnx(tmp_path / "trt.onnx", "tensorrt"), tmp_path / "m.engine")
    assert engine.stat().st_size > 0
    assert ModelMetadata.read_sidecar(engine).quantization.target == "tensorrt"


class _Flags:
    """``tensorrt.NetworkDefinitionCreationFlag`` as documented: EXPLICIT_BATCH = 0 (8.x; deprecated
    in 10.x), STRONGLY_TYPED = 1 (9.1+)."""

    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class _TensorRT:
    """The module surface ``network_flags`` reads, at a given version."""

    NetworkDefinitionCreationFlag = _Flags

    def __init__(self, version: str) -> None:
        self.__version__ = version


@pytest.mark.parametrize(
    ("version", "strongly_typed", "flags"),
    [
        ("8.5.2.2", False, 1),  # JetPack 5.1: explicit batch, or the ONNX parser refuses the network
        ("8.6.2.3", False, 1),  # JetPack 6.0
        ("10.3.0.30", False, 0),  # JetPack 6.1+: explicit batch only, the flag deprecated
        ("10.3.0.30", True, 2),
    ],
)
def test_the_network_is_explicit_batch_on_every_supported_tensorrt(version, strongly_typed, flags) -> None:
    from bienbao.trainer.export.tensorrt_engine import network_flags

    assert network_flags(_TensorRT(version), strongly_typed) == flags

"""TensorRT engine from a Q/DQ ONNX export (TensorRT 8.5+ Python API: JetPack 5.1, 6.0 and 6.1+).

Explicit quantization: the Q/DQ nodes in the ONNX file decide what runs in INT8, with the scales
QAT learned; no calibrator is involved. By default the network is weakly typed with the INT8 and
FP16 builder flags, so the float layers (the DFL; the head's final convs in exp1) run in FP16;
``strongly_typed=True`` builds the network as typed in the file instead (TensorRT's recommended
mode for Q/DQ networks, float layers in FP32). The matching ``trtexec`` command line is
``trtexec_command``; ``deploy/jetson/build_engine.sh`` runs it on the device.

TensorRT is not installable on the project's build machines (only on a Jetson or a CUDA machine
with TensorRT), so this module imports it lazily and its own tests skip where it is absent.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import onnx

from bienbao.core.files import atomic_write_bytes
from bienbao.runtime.backends.tensorrt import check_tensorrt_version
from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata
from bienbao.trainer.formats import check_combination

__all__ = ["EngineBuildError", "build_engine", "network_flags", "trtexec_command"]


class EngineBuildError(RuntimeError):
    """TensorRT is missing, rejected the ONNX graph, or could not build an engine."""


def _tensorrt(strongly_typed: bool = False):
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineBuildError(
            "TensorRT's Python bindings are not installed. On a Jetson they come with JetPack "
            "(apt install python3-libnvinfer); on an x86 CUDA machine from NVIDIA's TensorRT packages (8.5 or "
            "newer). Or build on the device with deploy/jetson/build_engine.sh (trtexec)."
        ) from exc
    try:
        check_tensorrt_version(tensorrt.__version__, strongly_typed)
    except RuntimeError as exc:
        raise EngineBuildError(str(exc)) from exc
    return tensorrt


def network_flags(trt, strongly_typed: bool = False) -> int:
    """``create_network``'s flags: TensorRT 8.x needs ``EXPLICIT_BATCH`` (without it the network is
    implicit-batch, which the ONNX parser refuses); TensorRT 10 has only explicit batch and
    deprecates the flag (``create_network(0)`` is its documented form)."""
    flags = 0
    if int(str(trt.__version__).split(".")[0]) < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def trtexec_command(
    onnx_path: str | Path,
    engine_path: str | Path,
    fp16: bool = True,
    strongly_typed: bool = False,
    workspace_mib: int = 2048,
) -> str:
    """The ``trtexec`` line that builds the same engine as ``build_engine``."""
    args = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        f"--memPoolSize=workspace:{workspace_mib}M",
    ]
    if strongly_typed:
        args.append("--stronglyTyped")
    else:
        args.append("--int8")
        if fp16:
            args.append("--fp16")
    return shlex.join(args)


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    fp16: bool = True,
    strongly_typed: bool = False,
    workspace_mib: int = 2048,
) -> Path:
    """Parse the Q/DQ ONNX, build and serialize an engine; the ONNX metadata goes to a sidecar."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    if METADATA_KEY not in props:
        raise EngineBuildError(f"{onnx_path} is not a bienbao export (no '{METADATA_KEY}' metadata)")
    metadata = ModelMetadata.from_json(props[METADATA_KEY])
    try:
        check_combination(metadata.quantization.target, ("engine",))
    except ValueError as exc:
        raise EngineBuildError(f"{onnx_path} was exported for {metadata.quantization.target}: {exc}") from None
    trt = _tensorrt(strongly_typed)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if not strongly_typed:
        config.set_flag(trt.BuilderFlag.INT8)  # honour the Q/DQ nodes (explicit quantization)
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)  # float layers in FP16
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    atomic_write_bytes(engine_path, bytes(serialized))  # never a truncated engine where the real one belongs
    metadata.write_sidecar(engine_path)
    return engine_path

"""TensorRT backend (the tensor-name API of TensorRT 8.5+, so JetPack 5.1 to 6.x; pycuda buffers, one CUDA stream).

Deserializes an engine built by ``bienbao export --format engine`` (or ``trtexec``), binds its
input and output by tensor name, and runs ``execute_async_v3`` on its own stream with page-locked
host buffers. TensorRT's Python bindings and pycuda come from JetPack / the board, not from the
package registry; neither can be installed on the project's build machines, so this module's own
tests are skipped there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._deps import require
from ..metadata import MetadataError, ModelMetadata

__all__ = ["MIN_TENSORRT", "TENSORRT_HINT", "TensorRTBackend", "check_tensorrt_version"]

#: The tensor-name API used here (num_io_tensors, set_tensor_address, execute_async_v3) and explicit
#: (Q/DQ) INT8 quantization: TensorRT 8.5 and newer, i.e. JetPack 5.1 (8.5), 6.0 (8.6), 6.1+ (10.x).
MIN_TENSORRT = (8, 5)
TENSORRT_HINT = (
    "TensorRT's Python bindings come with JetPack, not from pip (the registry's tensorrt packages "
    "are download stubs, and bienbao-runtime[tensorrt] installs nothing): sudo apt install "
    "python3-libnvinfer, then check with python3 -c 'import tensorrt; print(tensorrt.__version__)'. A "
    "virtual environment must see them: python3 -m venv --system-site-packages (deploy/jetson/install.sh "
    "does this)"
)
PYCUDA_HINT = (
    "pycuda is built on the board against JetPack's CUDA: PATH=/usr/local/cuda/bin:$PATH "
    "CUDA_ROOT=/usr/local/cuda pip install pycuda (deploy/jetson/install.sh does this)"
)


def check_tensorrt_version(version: str, strongly_typed: bool = False) -> tuple[int, int]:
    """``(major, minor)`` of a TensorRT that runs bienbao engines, or a ``RuntimeError`` saying
    which JetPack is needed and why."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError as exc:
        raise RuntimeError(f"cannot read the TensorRT version {version!r}") from exc
    if (major, minor) < MIN_TENSORRT:
        raise RuntimeError(
            f"TensorRT {version} found; bienbao needs TensorRT 8.5 or newer (JetPack 5.1 or newer: "
            "8.5 brought the tensor-name execution API, execute_async_v3, that the engine runs with)"
        )
    if strongly_typed and major < 9:
        raise RuntimeError(
            f"TensorRT {version}: strongly typed networks need TensorRT 9 or newer (JetPack 6.1+); "
            "build without strongly_typed (INT8 + FP16 flags), which TensorRT 8.5 and 8.6 support"
        )
    return major, minor


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, model_path: str | Path, device: int = 0) -> None:
        trt = require("tensorrt", None, TENSORRT_HINT)
        check_tensorrt_version(trt.__version__)
        cuda = require("pycuda.driver", None, PYCUDA_HINT)
        model_path = Path(model_path)
        self.metadata: ModelMetadata | None
        try:
            self.metadata = ModelMetadata.read_sidecar(model_path)
        except MetadataError:
            if ModelMetadata.sidecar_path(model_path).exists():
                raise  # present but broken or from a newer bienbao: say so, do not guess (as LiteRT does)
            self.metadata = None
        cuda.init()
        self._cuda = cuda
        self._context = cuda.Device(device).retain_primary_context()
        self._context.push()
        try:
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = runtime.deserialize_cuda_engine(model_path.read_bytes())
            if engine is None:
                raise RuntimeError(
                    f"TensorRT could not load {model_path}: an engine only runs with the TensorRT "
                    "version and GPU it was built with; rebuild it on this device"
                )
            self.engine = engine
            self.execution = engine.create_execution_context()
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            if len(inputs) != 1 or len(outputs) != 1:
                raise RuntimeError(f"{model_path}: expected one input and one output, got {inputs} -> {outputs}")
            self.input_name, self.output_name = inputs[0], outputs[0]
            shape = tuple(engine.get_tensor_shape(self.input_name))
            if any(d < 0 for d in shape):  # a dynamic engine: fix batch 1 at the metadata's size
                if self.metadata is None:
                    raise RuntimeError(f"{model_path} has a dynamic input and no metadata sidecar to size it")
                shape = (1, 3, *self.metadata.imgsz)
                self.execution.set_input_shape(self.input_name, shape)
            self.input_shape = shape
            self.input_size = (int(shape[2]), int(shape[3]))
            self.output_shape = tuple(self.execution.get_tensor_shape(self.output_name))
            self.stream = cuda.Stream()
            self._buffers = {}
            for name, tensor_shape in ((self.input_name, self.input_shape), (self.output_name, self.output_shape)):
                dtype = trt.nptype(engine.get_tensor_dtype(name))
                host = cuda.pagelocked_empty(int(np.prod(tensor_shape)), dtype)
                device_memory = cuda.mem_alloc(host.nbytes)
                self.execution.set_tensor_address(name, int(device_memory))
                self._buffers[name] = (host, device_memory)
        finally:
            self._context.pop()

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        if tensor.shape != self.input_shape:
            raise ValueError(f"input of shape {tensor.shape}; this engine takes {self.input_shape}")
        host_in, device_in = self._buffers[self.input_name]
        host_out, device_out = self._buffers[self.output_name]
        self._context.push()
        try:
            np.copyto(host_in, tensor.ravel().astype(host_in.dtype, copy=False))
            self._cuda.memcpy_htod_async(device_in, host_in, self.stream)
            if not self.execution.execute_async_v3(self.stream.handle):
                raise RuntimeError("TensorRT execution failed")
            self._cuda.memcpy_dtoh_async(host_out, device_out, self.stream)
            self.stream.synchronize()
        finally:
            self._context.pop()
        return host_out.reshape(self.output_shape).astype(np.float32)

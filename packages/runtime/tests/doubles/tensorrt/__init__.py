"""Test double of the ``tensorrt`` module's runtime API (see ../README.md). An "engine" is an ONNX
model's bytes; its I/O tensors keep the ONNX names (any names: the backend must bind by name)."""

from __future__ import annotations

import enum
import os

import numpy as np
from pycuda import driver as _cuda

__version__ = os.environ.get("FAKE_TENSORRT_VERSION", "10.3.0")


class Logger:
    WARNING = 2

    def __init__(self, severity: int = WARNING) -> None:
        self.severity = severity


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2


def nptype(dtype: DataType) -> type:
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8}[dtype]


class ICudaEngine:
    def __init__(self, data: bytes) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        self._io = [(i.name, TensorIOMode.INPUT, i.shape) for i in self.session.get_inputs()]
        self._io += [(o.name, TensorIOMode.OUTPUT, o.shape) for o in self.session.get_outputs()]

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def get_tensor_name(self, index: int) -> str:
        return self._io[index][0]

    def _entry(self, name: str):
        return next(entry for entry in self._io if entry[0] == name)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self._entry(name)[1]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else -1 for d in self._entry(name)[2])

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType.FLOAT

    def create_execution_context(self) -> IExecutionContext:
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine, self.addresses, self.shapes = engine, {}, {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.shapes:
            return self.shapes[name]
        shape = self.engine.get_tensor_shape(name)
        if any(d < 0 for d in shape):  # an output of a dynamic engine: run once to know it
            inputs = {
                n: np.zeros(self.shapes[n], np.float32) for n, mode, _ in self.engine._io if mode is TensorIOMode.INPUT
            }
            shape = self.engine.session.run([name], inputs)[0].shape
        return tuple(shape)

    def set_tensor_address(self, name: str, pointer: int) -> bool:
        if pointer not in _cuda.MEMORY:
            raise RuntimeError(f"set_tensor_address({name!r}): {pointer:#x} is not device memory")
        self.addresses[name] = pointer
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        _cuda._current()
        missing = [n for n, _, _ in self.engine._io if n not in self.addresses]
        if missing:
            raise RuntimeError(f"execute_async_v3: tensors without an address: {missing}")
        inputs = {}
        for name, mode, _ in self.engine._io:
            if mode is TensorIOMode.INPUT:
                shape = self.get_tensor_shape(name)
                inputs[name] = np.frombuffer(bytes(_cuda.MEMORY[self.addresses[name]]), np.float32).reshape(shape)
        outputs = [n for n, mode, _ in self.engine._io if mode is TensorIOMode.OUTPUT]
        for name, value in zip(outputs, self.engine.session.run(outputs, inputs), strict=True):
            block = _cuda.MEMORY[self.addresses[name]]
            data = np.ascontiguousarray(value, np.float32).tobytes()
            if len(data) != len(block):
                raise RuntimeError(f"output {name!r}: {len(data)} bytes into a buffer of {len(block)}")
            block[:] = data
        _cuda.CALLS.append("execute")
        return True


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
        _cuda._current()
        try:
            return ICudaEngine(data)
        except Exception:  # TensorRT returns None for bytes it cannot read
            return None

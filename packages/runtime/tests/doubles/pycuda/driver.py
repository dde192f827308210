"""Test double of ``pycuda.driver``: device memory is a dict of byte arrays; every call that touches
the device checks that a context is current, as the CUDA driver does."""

from __future__ import annotations

import itertools

import numpy as np

MEMORY: dict[int, bytearray] = {}  # device pointer -> its bytes
TOTAL = 8 * 2**30
_pointers = itertools.count(0x7F0000000000, 0x100000)
_state = {"initialised": False, "depth": 0, "pushes": 0}
CALLS: list[str] = []  # what ran on the device, in order (the tests read it)


class LogicError(RuntimeError):
    """pycuda's error for a call made in the wrong state."""


def init() -> None:
    _state["initialised"] = True


def _current() -> None:
    if not _state["initialised"]:
        raise LogicError("cuInit has not been called")
    if _state["depth"] < 1:
        raise LogicError("invalid device context - no currently active context?")


class _Context:
    def push(self) -> None:
        _state["depth"] += 1
        _state["pushes"] += 1

    def pop(self) -> None:
        if _state["depth"] < 1:
            raise LogicError("context stack is empty")
        _state["depth"] -= 1


class Device:
    def __init__(self, ordinal: int) -> None:
        if not _state["initialised"]:
            raise LogicError("cuInit has not been called")
        if ordinal != 0:
            raise LogicError(f"invalid device ordinal {ordinal}")

    def retain_primary_context(self) -> _Context:
        return _Context()

    def name(self) -> str:
        return "Orin (test double)"


def get_version() -> tuple[int, int, int]:
    return (12, 6, 0)


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        _current()
        self.pointer = next(_pointers)
        MEMORY[self.pointer] = bytearray(nbytes)

    def __int__(self) -> int:
        return self.pointer


class Stream:
    handle = 0x5EED

    def synchronize(self) -> None:
        _current()


def mem_alloc(nbytes: int) -> DeviceAllocation:
    return DeviceAllocation(nbytes)


def pagelocked_empty(shape: int | tuple[int, ...], dtype: object) -> np.ndarray:
    return np.empty(shape, dtype)


def mem_get_info() -> tuple[int, int]:
    _current()
    return TOTAL - sum(len(block) for block in MEMORY.values()), TOTAL


def memcpy_htod_async(destination: DeviceAllocation, source: np.ndarray, stream: Stream | None = None) -> None:
    _current()
    block = MEMORY[int(destination)]
    if source.nbytes != len(block):
        raise LogicError(f"copy of {source.nbytes} bytes into an allocation of {len(block)}")
    block[:] = source.tobytes()
    CALLS.append("htod")


def memcpy_dtoh_async(destination: np.ndarray, source: DeviceAllocation, stream: Stream | None = None) -> None:
    _current()
    block = MEMORY[int(source)]
    if destination.nbytes != len(block):
        raise LogicError(f"copy of an allocation of {len(block)} bytes into {destination.nbytes}")
    destination[...] = np.frombuffer(bytes(block), destination.dtype).reshape(destination.shape)
    CALLS.append("dtoh")


def reset() -> None:
    MEMORY.clear()
    CALLS.clear()
    _state.update(initialised=False, depth=0, pushes=0)

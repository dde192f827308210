"""What a TensorRT engine takes on a Jetson, which RSS does not show: free CUDA memory before and
after loading (pycuda, in the primary context TensorRT runs in) and tegrastats' RAM in use. The
hardware calls are answered by a test double of the pycuda.driver surface the code uses
(``init``, ``Device(n).retain_primary_context()`` with ``push``/``pop``, ``mem_get_info``, as
documented for pycuda 2022-2025) and a ``tegrastats`` script printing JetPack 6 lines."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from bienbao.bench import _memory
from bienbao.bench.report import _device_mb
from bienbao.bench.system import cuda_free_mb

from .test_tegrastats import JETPACK6_ORIN_NANO

TOTAL = 7620 * 2**20


class FakeDriver(types.ModuleType):
    """pycuda.driver's surface: free memory falls by what an engine allocates; push/pop balanced."""

    def __init__(self) -> None:
        super().__init__("pycuda.driver")
        self.free, self.depth, self.initialised = 6000 * 2**20, 0, False

    def init(self) -> None:
        self.initialised = True

    def Device(self, index: int):
        driver = self

        class Context:
            def push(self) -> None:
                driver.depth += 1

            def pop(self) -> None:
                driver.depth -= 1

        class Device:
            def retain_primary_context(self):
                assert driver.initialised and index == 0
                return Context()

        return Device()

    def mem_get_info(self) -> tuple[int, int]:
        assert self.depth == 1, "mem_get_info outside a context"
        return self.free, TOTAL


@pytest.fixture
def driver(monkeypatch):
    fake = FakeDriver()
    package = types.ModuleType("pycuda")
    package.driver = fake
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake)
    return fake


def test_free_cuda_memory_is_read_in_the_primary_context(driver) -> None:
    assert cuda_free_mb() == 6000.0 and driver.depth == 0


def test_without_pycuda_there_is_no_device_figure(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    assert cuda_free_mb() is None


def test_the_memory_pass_reports_the_engine_and_tegrastats_ram(driver, monkeypatch, tmp_path) -> None:
    script = tmp_path / "tegrastats"  # as JetPack's: a line per interval until terminated
    script.write_text(f"#!/bin/sh\nwhile true; do echo '{JETPACK6_ORIN_NANO}'; sleep 0.05; done\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")

    class Engine:  # stands in for the TensorRT backend, which needs the board
        def __init__(self) -> None:
            driver.free -= 212 * 2**20  # the engine's device allocations

        def infer(self, tensor):
            import time

            time.sleep(0.05)
            return np.zeros((1, 6, 10), np.float32)

    monkeypatch.setattr(_memory, "load_backend", lambda backend, model, **options: Engine())
    monkeypatch.setattr(_memory, "run_frame", lambda runner, frame: runner.infer(frame))
    result = _memory.measure("model.engine", np.zeros((2, 64, 64, 3), np.uint8), "auto", None, repeats=6)
    assert result["device_memory_added_mb"] == 212.0
    assert result["tegrastats_ram_used_mb"] == {"mean": 2120.0, "peak": 2120}
    assert result["power"]["input_power_mean_mw"] == 4830.0
    assert _device_mb(result) == "212" and _device_mb({"rss_added_by_model_mb": 30}) == "-"

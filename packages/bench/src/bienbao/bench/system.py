"""What machine and software a result was measured on (recorded in every result file)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bienbao.core.cpu import describe_cpu

__all__ = ["cuda_free_mb", "device_info", "gpu_memory_mb", "library_versions"]

LIBRARIES = (
    "bienbao-runtime",
    "bienbao-bench",
    "onnxruntime",
    "onnxruntime-gpu",
    "numpy",
    "opencv-python",
    "opencv-python-headless",
    "tensorrt",
    "pycuda",
    "psutil",
)


def _l4t_release() -> str | None:
    """L4T (JetPack) release from /etc/nv_tegra_release, e.g. 'R36 (release), REVISION: 4.3'."""
    path = Path("/etc/nv_tegra_release")
    if not path.is_file():
        return None
    first = path.read_text().splitlines()[0]
    return first.lstrip("# ").split(", GCID")[0]


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def device_info() -> dict:
    import psutil

    cpu = describe_cpu()
    return {
        "cpu": cpu["name"],
        "cpu_isa": cpu["isa"],
        "int8_path": cpu["int8"],
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpus": _gpus(),
        "l4t": _l4t_release(),
        "hostname": platform.node(),
    }


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def gpu_memory_mb(pid: int | None = None) -> float | None:
    """GPU memory this process holds (NVIDIA dGPU via nvidia-smi); ``None`` where unknown."""
    if shutil.which("nvidia-smi") is None:
        return None
    pid = pid or os.getpid()
    result = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    for line in result.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0] == str(pid):
            return float(fields[1])
    return 0.0


def cuda_free_mb(device: int = 0) -> float | None:
    """Free memory of CUDA ``device`` in MiB, read through pycuda in the device's primary context
    (the one the TensorRT backend runs in, so creating it is not counted as the model's), or None
    where pycuda is not installed. On a Jetson this memory is the board's RAM, shared with the CPU:
    nvidia-smi does not exist there and the process's RSS does not show what the engine allocated."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        return None
    cuda.init()
    context = cuda.Device(device).retain_primary_context()
    context.push()
    try:
        free, _total = cuda.mem_get_info()
    finally:
        context.pop()
    return free / 2**20

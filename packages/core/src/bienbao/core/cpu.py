"""The CPU a figure was measured on: its name and the instruction sets that decide INT8 speed.

    describe_cpu()  ->  {"name": "AMD EPYC 7B13", "arch": "x86_64", "isa": ["avx2", "fma"], "int8": "..."}

x86: AVX2, AVX-512 (F), AVX512-VNNI, AVX-VNNI, AMX-INT8 (VNNI is what makes ONNX Runtime's u8s8
convolutions fast and exact; without it they saturate, hence 7-bit weights there). ARM: NEON
(asimd), the dot-product instructions (asimddp: Jetson Orin's Cortex-A78AE, Raspberry Pi 5's
Cortex-A76) and i8mm. Read from /proc/cpuinfo (Linux); elsewhere only the name and architecture.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

__all__ = ["INT8_FLAGS", "describe_cpu", "int8_path"]

#: /proc/cpuinfo flag -> the name people use, in the order they matter for INT8
INT8_FLAGS = {
    "avx2": "avx2",
    "avx512f": "avx512",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "amx_int8": "amx_int8",
    "asimd": "neon",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
}


def _cpuinfo(path: Path) -> tuple[str, set[str]]:
    name, flags = "", set[str]()
    try:
        text = path.read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, flags


def int8_path(isa: list[str], arch: str) -> str:
    """What the instruction sets mean for 8-bit integer math, in a few words."""
    if "amx_int8" in isa:
        return "AMX + VNNI: int8 matrix tiles"
    if "avx512_vnni" in isa or "avx_vnni" in isa:
        return "VNNI: exact u8s8 dot products (8-bit weights are safe)"
    if "avx2" in isa:
        return "AVX2 without VNNI: u8s8 products saturate (7-bit weights for ONNX Runtime)"
    if "dotprod" in isa:
        return "ARM dot product (sdot/udot)" + (" + i8mm" if "i8mm" in isa else "")
    if arch in ("aarch64", "arm64"):
        return "ARM NEON without dot product"
    return "no 8-bit dot-product instructions found"


def describe_cpu(cpuinfo: str | Path = "/proc/cpuinfo", arch: str | None = None) -> dict[str, Any]:
    name, flags = _cpuinfo(Path(cpuinfo))
    arch = arch or platform.machine()
    isa = [label for flag, label in INT8_FLAGS.items() if flag in flags]
    return {"name": name or platform.processor() or arch, "arch": arch, "isa": isa, "int8": int8_path(isa, arch)}

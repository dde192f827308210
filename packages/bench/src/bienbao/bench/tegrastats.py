"""Parsing NVIDIA Jetson ``tegrastats`` lines, and sampling them while a benchmark runs.

The line format changed between JetPack releases; this parser reads the fields by pattern:
``RAM used/totalMB``, ``SWAP used/totalMB``, ``CPU [load%@MHz,...]`` (or ``off``, or JetPack 4's
older ``[a%,b%]@MHz``), ``GR3D_FREQ load%``, ``EMC_FREQ load%``, temperatures ``name@valueC`` and
power rails ``NAME now/average`` (milliwatts; JetPack 5+ writes ``mW``, JetPack 4 does not). The
board's input power is the first rail present of ``VDD_IN`` (Orin, JetPack 6), ``POM_5V_IN``
(Nano/TX, JetPack 4) and ``VIN_SYS_5V0`` (Xavier/AGX Orin, JetPack 5).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

__all__ = ["INPUT_RAILS", "TegraSample", "TegrastatsSampler", "parse_tegrastats"]

INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\dA-Za-z])")


@dataclass(frozen=True)
class TegraSample:
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    cpu_load: tuple[float | None, ...] = ()  # per core, None = off
    gpu_load: float | None = None
    emc_load: float | None = None
    temperatures: dict[str, float] = field(default_factory=dict)
    rails_mw: dict[str, int] = field(default_factory=dict)  # instantaneous power per rail

    @property
    def input_power_mw(self) -> int | None:
        return next((self.rails_mw[name] for name in INPUT_RAILS if name in self.rails_mw), None)


def _cpu_loads(inside: str) -> tuple[float | None, ...]:
    loads = []
    for raw in inside.split(","):
        entry = raw.strip()
        loads.append(None if not entry or entry == "off" else float(entry.split("%")[0]))
    return tuple(loads)


def parse_tegrastats(line: str) -> TegraSample:
    """One ``tegrastats`` line -> ``TegraSample`` (fields the line lacks stay ``None``/empty)."""
    ram, swap, cpu = _RAM.search(line), _SWAP.search(line), _CPU.search(line)
    gr3d, emc = _GR3D.search(line), _EMC.search(line)
    rails = {m.group(1): int(m.group(2)) for m in _RAIL.finditer(line) if m.group(1) not in ("RAM", "SWAP")}
    return TegraSample(
        ram_used_mb=int(ram.group(1)) if ram else None,
        ram_total_mb=int(ram.group(2)) if ram else None,
        swap_used_mb=int(swap.group(1)) if swap else None,
        cpu_load=_cpu_loads(cpu.group(1)) if cpu else (),
        gpu_load=float(gr3d.group(1)) if gr3d else None,
        emc_load=float(emc.group(1)) if emc else None,
        temperatures={m.group(1): float(m.group(2)) for m in _TEMP.finditer(line)},
        rails_mw=rails,
    )


class TegrastatsSampler:
    """Runs ``tegrastats --interval N`` in the background and keeps the parsed samples."""

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats") -> None:
        self.interval_ms = interval_ms
        self.command = shutil.which(command)
        self.samples: list[TegraSample] = []
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.command is not None

    def __enter__(self) -> TegrastatsSampler:
        if self.available:
            self._process = subprocess.Popen(
                [self.command, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            self.samples.append(parse_tegrastats(line))

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._thread.join(timeout=5)

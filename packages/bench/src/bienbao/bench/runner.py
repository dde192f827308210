"""The benchmark: several models measured in one run, interleaved (A B A B ...).

Latency is measured per stage (pre-process, inference, post-process, end to end) with nothing else
running in the process. Memory is measured in a *separate pass* afterwards: each model in a fresh
process of its own (``bienbao.bench._memory``), where a thread samples the resident set every
2 ms while it runs, so sampling never overlaps a latency measurement and each model's figure is
its own. On a Jetson, tegrastats is sampled during that pass too (board power per model).
An interruption (Ctrl-C) ends the latency loop early; what was measured is kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bienbao.runtime.backends import load_backend, split_options
from bienbao.runtime.detector import run_stages

__all__ = ["STAGES", "ModelRun", "run_benchmark", "run_frame"]

STAGES = ("preprocess", "inference", "postprocess", "end_to_end")


@dataclass
class ModelRun:
    name: str
    path: Path
    backend: object
    load_seconds: float
    samples_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    memory: dict = field(default_factory=dict)
    power: dict = field(default_factory=dict)


def _names(paths: Sequence[Path]) -> list[str]:
    """Short unique names for the models (file stems; parent folder added on a clash)."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def _load(paths: Sequence[Path], backend: str, threads: int | None, precision: str | None) -> list[ModelRun]:
    runs = []
    for name, path in zip(_names(paths), paths, strict=True):
        start = time.perf_counter()
        model = load_backend(backend, path, **backend_options(path, backend, threads, precision))
        runs.append(ModelRun(name, path, model, time.perf_counter() - start))
    return runs


def backend_options(path: str | Path, backend: str, threads: int | None, precision: str | None = None) -> dict:
    """The options this backend takes (threads: ONNX Runtime, OpenVINO and LiteRT, not TensorRT;
    precision: OpenVINO's inference precision)."""
    asked = {"threads": threads, "precision": precision}
    return split_options(backend, path, {k: v for k, v in asked.items() if v})[0]


def run_frame(backend, frame: np.ndarray) -> tuple[float, float, float, float]:
    """One frame through pre-process, inference and post-process; the stage times in seconds
    (pre-process, inference, post-process, end to end)."""
    names = backend.metadata.names if backend.metadata else ()
    _, (pre, infer, post) = run_stages(backend.infer, frame, backend.input_size, names)
    return pre, infer, post, pre + infer + post


def _one(run: ModelRun, frame: np.ndarray, record: bool) -> None:
    timings = run_frame(run.backend, frame)
    if record:
        for stage, value in zip(STAGES, timings, strict=True):
            run.samples_ms[stage].append(value * 1000)


def _memory_pass(
    run: ModelRun, frames: Sequence[np.ndarray], backend: str, threads: int | None, precision: str | None, repeats: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        frames_file = Path(folder) / "frames.npy"
        np.save(frames_file, np.stack([f for f in frames if f.shape == frames[0].shape]))
        command = [
            sys.executable,
            "-m",
            "bienbao.bench._memory",
            str(run.path),
            str(frames_file),
            "--backend",
            backend,
            "--repeats",
            str(repeats),
        ]
        if threads:
            command += ["--threads", str(threads)]
        if precision:
            command += ["--precision", precision]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory pass for {run.path} failed: {result.stderr.strip()[-500:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    run.power = measured.pop("power", {})
    run.memory = measured


def run_benchmark(
    paths: Sequence[str | Path],
    frames: Sequence[np.ndarray],
    backend: str = "auto",
    runs: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    memory: bool = True,
    precision: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    measured: Callable[[list[ModelRun], bool], None] | None = None,
) -> tuple[list[ModelRun], bool]:
    """Measure every model; returns the runs and whether the latency loop was interrupted.
    ``measured(runs, interrupted)`` is called as soon as the latency loop ends (before the memory
    pass), so a caller can save what is measured before anything else can fail."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs={runs}, warmup={warmup}: need runs >= 1 and warmup >= 0")
    if not frames:
        raise ValueError("no frames to run on")
    models = _load([Path(p) for p in paths], backend, threads, precision)
    for model in models:
        for index in range(warmup):
            _one(model, frames[index % len(frames)], record=False)
    interrupted = False
    try:
        for index in range(runs):
            for model in models:  # interleaved: a drift in machine speed hits every model alike
                _one(model, frames[index % len(frames)], record=True)
            if progress:
                progress(index + 1, runs)
    except KeyboardInterrupt:
        interrupted = True
    if measured:
        measured(models, interrupted)
    if memory and not interrupted:
        for model in models:
            _memory_pass(model, frames, backend, threads, precision, repeats=min(runs, 10))
    return models, interrupted

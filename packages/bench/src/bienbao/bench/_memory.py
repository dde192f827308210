"""The memory pass, run as ``python -m bienbao.bench._memory MODEL FRAMES.npy`` in a fresh process
per model, so the memory a model adds is its own (not shared with the other models under test).

Prints one JSON object: the process's resident set before loading, after loading, and its peak
while running the frames (sampled every 2 ms from a thread), GPU memory where nvidia-smi knows it,
the device memory a TensorRT engine took (free CUDA memory before and after loading, via pycuda:
what RSS misses on a Jetson), and on a Jetson tegrastats' RAM in use and the mean board input power
during the runs.
"""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np
import psutil

from bienbao.runtime.backends import backend_for_path, load_backend

from .runner import backend_options, run_frame
from .system import cuda_free_mb, gpu_memory_mb
from .tegrastats import TegrastatsSampler


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def measure(
    model: str, frames: np.ndarray, backend: str, threads: int | None, repeats: int, precision: str | None = None
) -> dict:
    baseline = _rss_mb()
    options = backend_options(model, backend, threads, precision)  # the latency pass's too
    on_cuda = (backend if backend != "auto" else backend_for_path(model)) == "tensorrt"
    device_free = cuda_free_mb() if on_cuda else None
    runner = load_backend(backend, model, **options)
    loaded = _rss_mb()
    peak = [loaded]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            done.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    with TegrastatsSampler() as tegra:
        sampler.start()
        for index in range(repeats):
            run_frame(runner, frames[index % len(frames)])
        done.set()
        sampler.join()
    result = {
        "baseline_rss_mb": round(baseline, 1),
        "rss_after_load_mb": round(loaded, 1),
        "peak_rss_mb": round(peak[0], 1),
        "rss_added_by_model_mb": round(peak[0] - baseline, 1),
    }
    gpu = gpu_memory_mb()
    if gpu is not None:
        result["gpu_memory_mb"] = gpu
    if device_free is not None:
        after = cuda_free_mb()
        if after is not None:
            result["device_memory_added_mb"] = round(device_free - after, 1)
    rams = [s.ram_used_mb for s in tegra.samples if s.ram_used_mb is not None]
    if rams:
        result["tegrastats_ram_used_mb"] = {"mean": round(float(np.mean(rams)), 1), "peak": max(rams)}
    powers = [s.input_power_mw for s in tegra.samples if s.input_power_mw is not None]
    if powers:
        result["power"] = {"input_power_mean_mw": round(float(np.mean(powers)), 1), "samples": len(powers)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("frames", help=".npy file holding the frames (N, H, W, 3) uint8")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--precision")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    frames = np.load(args.frames)
    print(json.dumps(measure(args.model, frames, args.backend, args.threads, args.repeats, args.precision)))


if __name__ == "__main__":
    main()

"""Benchmark results: a versioned JSON document, a terminal table, Markdown and a PNG chart.

JSON schema (``schema: bienbao-bench``, ``schema_version: 1``)::

    created            ISO time of the run
    device             cpu, cores, machine, memory_gb, os, python, gpus, l4t (JetPack), hostname
    libraries          {distribution: version}
    options            runs, warmup, threads, precision (OpenVINO's, null: its own choice), backend,
                       source, frames, interleaved (always true)
    interrupted        true if Ctrl-C ended the latency loop early (figures cover what ran)
    models[]           name, path, backend, file_size_bytes, load_time_s, input_size [h, w],
                       quantization (the file's metadata, or null), throughput_fps,
                       latency_ms: {preprocess, inference, postprocess, end_to_end} each with
                           count, mean, std, p50, p90, p99, min, max (milliseconds),
                       memory (each model alone in a fresh process, a separate pass after the
                           latency runs): baseline_rss_mb, rss_after_load_mb, peak_rss_mb,
                           rss_added_by_model_mb (peak - baseline)[, gpu_memory_mb (nvidia-smi)]
                           [, device_memory_added_mb (TensorRT: free CUDA memory before - after
                           loading, pycuda)][, tegrastats_ram_used_mb: {mean, peak} (Jetson)]
                       power (Jetson only, during the memory pass): input_power_mean_mw, samples
                       ratio_vs_first: end-to-end mean of the first model / this model's (>1 = faster)
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path

from bienbao.runtime.backends import backend_label, model_size_bytes

from .runner import STAGES, ModelRun
from .stats import LatencyStats
from .system import device_info, library_versions

__all__ = ["SCHEMA", "SCHEMA_VERSION", "build_result", "compare", "load_result", "markdown", "plot", "table"]

SCHEMA = "bienbao-bench"
SCHEMA_VERSION = 1


def build_result(runs: Sequence[ModelRun], options: dict, interrupted: bool) -> dict:
    models = []
    for run in runs:
        if not run.samples_ms["end_to_end"]:
            continue
        latency = {stage: LatencyStats.of(run.samples_ms[stage]).to_dict() for stage in STAGES}
        metadata = run.backend.metadata
        models.append(
            {
                "name": run.name,
                "path": str(run.path),
                "backend": backend_label(run.backend),
                "file_size_bytes": model_size_bytes(run.path),
                "load_time_s": round(run.load_seconds, 3),
                "input_size": list(run.backend.input_size),
                "quantization": None if metadata is None else vars(metadata.quantization),
                "throughput_fps": round(1000 / latency["end_to_end"]["mean"], 2),
                "latency_ms": latency,
                "memory": run.memory,
                "power": run.power,
            }
        )
    if models:
        first = models[0]["latency_ms"]["end_to_end"]["mean"]
        for model in models:
            model["ratio_vs_first"] = round(first / model["latency_ms"]["end_to_end"]["mean"], 3)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_info(),
        "libraries": library_versions(),
        "options": {**options, "interleaved": True},
        "interrupted": interrupted,
        "models": models,
    }


def load_result(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a bench result: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a bench result: its JSON is a {type(data).__name__}, not an object")
    if data.get("schema") != SCHEMA or data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path} is not a {SCHEMA} v{SCHEMA_VERSION} result "
            f"(schema {data.get('schema')!r} v{data.get('schema_version')!r})"
        )
    return data


def _device_mb(memory: dict) -> str:
    """The memory a model took on its device: the engine's CUDA allocations (TensorRT), else what
    nvidia-smi reports; '-' on a CPU."""
    for key in ("device_memory_added_mb", "gpu_memory_mb"):
        if memory.get(key) is not None:
            return f"{memory[key]:.0f}"
    return "-"


def _rows(result: dict) -> list[list[str]]:
    rows = []
    for model in result["models"]:
        lat = model["latency_ms"]
        e2e = lat["end_to_end"]
        rows.append(
            [
                model["name"],
                model["backend"],
                f"{model['file_size_bytes'] / 1e6:.2f}",
                f"{lat['preprocess']['mean']:.1f}",
                f"{lat['inference']['mean']:.1f}",
                f"{lat['postprocess']['mean']:.1f}",
                f"{e2e['mean']:.1f} ± {e2e['std']:.1f}",
                f"{e2e['p50']:.1f}",
                f"{e2e['p90']:.1f}",
                f"{e2e['p99']:.1f}",
                f"{model['throughput_fps']:.1f}",
                f"{model['load_time_s']:.2f}",
                f"{model['memory'].get('rss_added_by_model_mb', float('nan')):.0f}",
                _device_mb(model["memory"]),
                f"{model['memory'].get('peak_rss_mb', float('nan')):.0f}",
                f"{model['power']['input_power_mean_mw'] / 1000:.2f}" if model.get("power") else "-",
                f"{model['ratio_vs_first']:.2f}x",
            ]
        )
    return rows


HEADER = [
    "model",
    "backend",
    "MB",
    "pre ms",
    "infer ms",
    "post ms",
    "e2e mean ms",
    "p50",
    "p90",
    "p99",
    "FPS",
    "load s",
    "+RSS MB",
    "+device MB",
    "peak MB",
    "power W",
    "vs first",
]


def table(result: dict) -> str:
    rows = [HEADER, *_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    device = result["device"]
    options = result["options"]
    isa = f", {'/'.join(device['cpu_isa'])}" if device.get("cpu_isa") else ""
    head = (
        f"{device['cpu']} ({device['cores']} cores{isa}{', ' + ', '.join(device['gpus']) if device['gpus'] else ''}"
        f"{', L4T ' + device['l4t'] if device.get('l4t') else ''}); {options['runs']} interleaved runs, "
        f"{options.get('threads') or 'default'} threads"
        f"{', OpenVINO precision ' + options['precision'] if options.get('precision') else ''}, "
        f"source {options.get('source')}"
    )
    note = "\n(interrupted: figures cover the runs completed)" if result.get("interrupted") else ""
    return head + "\n" + "\n".join(lines) + note


def markdown(result: dict) -> str:
    rows = [HEADER, ["---"] * len(HEADER), *_rows(result)]
    body = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    device = result["device"]
    return (
        f"Measured {result['created']} on {device['cpu']} ({device['cores']} cores"
        f"{', ' + '/'.join(device['cpu_isa']) if device.get('cpu_isa') else ''}), "
        f"{result['options']['runs']} interleaved runs per model; latency in milliseconds, memory measured "
        f"in a separate pass.\n\n{body}\n"
    )


def plot(result: dict, path: str | Path) -> Path | None:
    """Box plot of end-to-end latency per model; ``None`` when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure  # outside pyplot: no global state, no backend switch
    except ImportError:
        return None
    models = result["models"]
    figure = Figure(figsize=(1.8 + 1.6 * len(models), 4))
    axis = figure.subplots()
    stats = [
        {
            "label": m["name"],
            "med": m["latency_ms"]["end_to_end"]["p50"],
            "q1": m["latency_ms"]["end_to_end"]["p50"],
            "q3": m["latency_ms"]["end_to_end"]["p90"],
            "whislo": m["latency_ms"]["end_to_end"]["min"],
            "whishi": m["latency_ms"]["end_to_end"]["p99"],
            "mean": m["latency_ms"]["end_to_end"]["mean"],
        }
        for m in models
    ]
    axis.bxp(stats, showmeans=True, showfliers=False)
    axis.set_ylabel("end-to-end latency (ms)")
    axis.set_title(f"{result['device']['cpu']}: box p50-p90, whiskers min-p99, triangle mean", fontsize=9)
    axis.tick_params(axis="x", labelrotation=12, labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return Path(path)


def compare(first: dict, second: dict) -> str:
    """Side by side: each model present in both results, end-to-end mean and the ratio."""
    others = {m["name"]: m for m in second["models"]}
    lines = [
        f"A: {first['device']['cpu']} ({first['created']})",
        f"B: {second['device']['cpu']} ({second['created']})",
        f"{'model':30s} {'A e2e ms':>10s} {'B e2e ms':>10s} {'A/B':>7s} {'A MB':>8s} {'B MB':>8s}",
    ]
    for model in first["models"]:
        other = others.get(model["name"])
        if other is None:
            lines.append(f"{model['name']:30s} {model['latency_ms']['end_to_end']['mean']:10.1f} {'-':>10s}")
            continue
        a, b = model["latency_ms"]["end_to_end"]["mean"], other["latency_ms"]["end_to_end"]["mean"]
        lines.append(
            f"{model['name']:30s} {a:10.1f} {b:10.1f} {a / b:7.2f} "
            f"{model['memory'].get('peak_rss_mb', 0):8.0f} {other['memory'].get('peak_rss_mb', 0):8.0f}"
        )
    return "\n".join(lines)

"""The accuracy-latency front: FP32 and INT8 at several input sizes, on each CPU backend.

    python benchmarks/front.py --fp32 FP32.pt --int8 QAT.pt --data DATASET.yaml \
        [--sizes 640x640 384x640 544x960] [--phase accuracy|latency|all] [--out docs/results/front]

For every size, exports the FP32 checkpoint (``--target fp32``) and the INT8 one (ONNX Runtime
layout, the checkpoint's weight width) and:

- ``accuracy``: ``bienbao evaluate`` of each exported file on val+test together (mAP50 and
  mAP50-95 of the deployed file, through ``bienbao.runtime``); cached in ``accuracy.json`` so the
  slow part runs once and may share the machine;
- ``latency``: end to end (pre-process + inference + post-process, ``Detector.detect_timed``) on
  real val frames at their own size (640x360 dashcam frames), each file on ONNX Runtime and on
  OpenVINO (if installed), 2 threads, interleaved, medians; run it on an otherwise idle machine.
  Written to ``latency.json`` with the CPU.

Then ``front.md`` (the table, and the point that scores the highest mAP50-95 at or under the
latency of FP32 640x640 on ONNX Runtime) and ``front.png``. The models are not fine-tuned at the
other sizes: the INT8 ranges and weights are the 640 training's.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from peers import calibration_frames

from bienbao.core.cpu import describe_cpu


def parse_size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width)


def export_all(fp32: str, int8: str, sizes: list[tuple[int, int]], folder: Path) -> dict[str, dict[str, str]]:
    from bienbao.trainer.export import export_onnx

    files: dict[str, dict[str, str]] = {}
    for height, width in sizes:
        key = f"{height}x{width}"
        files[key] = {
            "fp32": str(export_onnx(fp32, folder / key, "fp32", imgsz=(height, width)).path),
            "int8": str(export_onnx(int8, folder / key, "onnxruntime", imgsz=(height, width)).path),
        }
    return files


def accuracy(files: dict, data: str, cache: Path) -> dict:
    from bienbao.trainer.evaluation.evaluate import evaluate

    results = json.loads(cache.read_text()) if cache.is_file() else {}
    for size, pair in files.items():
        for kind, path in pair.items():
            key = f"{size} {kind}"
            if key in results:
                continue
            print(f"evaluating {key} on val+test", flush=True)
            result = evaluate(path, data, "val+test")
            results[key] = {"map50": result.map50, "map50_95": result.map50_95}
            cache.write_text(json.dumps(results, indent=2) + "\n")  # after each: an interruption keeps what ran
    return results


def latency(files: dict, data: str, runs: int, out: Path) -> dict:
    import importlib.util

    from bienbao.runtime import Detector

    backends = ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    frames = [cv2.imread(str(p)) for p in calibration_frames(Path(data), "val", 8)]
    detectors = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # weight-width notes: the table names the CPU
        for size, pair in files.items():
            for kind, path in pair.items():
                for backend in backends:
                    detectors[f"{size} {kind} {backend}"] = Detector(path, backend=backend, conf=0.25, threads=2)
    times: dict[str, list[float]] = {key: [] for key in detectors}
    for detector in detectors.values():
        detector.detect(frames[0])
    for run in range(runs):
        frame = frames[run % len(frames)]
        for key, detector in detectors.items():
            start = time.perf_counter()
            detector.detect(frame)
            times[key].append(time.perf_counter() - start)
    cpu = describe_cpu()
    result = {
        "cpu": cpu,
        "runs": runs,
        "threads": 2,
        "median_ms": {key: round(float(np.median(v)) * 1000, 2) for key, v in times.items()},
    }
    (out / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(acc: dict, lat: dict, out: Path) -> None:
    from matplotlib.figure import Figure

    rows = []
    for key, ms in lat["median_ms"].items():
        size, kind, backend = key.split()
        score = acc.get(f"{size} {kind}")
        if score:
            rows.append((size, kind, backend, ms, score["map50"], score["map50_95"]))
    budget = lat["median_ms"].get("640x640 fp32 onnxruntime")
    within = [r for r in rows if budget is not None and r[3] <= budget]
    best = max(within, key=lambda r: r[5]) if within else None
    cpu = lat["cpu"]
    lines = [
        f"CPU: {cpu['name']} ({cpu['arch']}; {', '.join(cpu['isa'])}: {cpu['int8']}); {lat['threads']} threads, "
        f"{lat['runs']} frames per file, interleaved, end to end (pre + inference + post) on 640x360 val frames.",
        "Accuracy: `bienbao evaluate` of each exported file on val+test (366 images).",
        "",
        "| input (h x w) | model | backend | end-to-end ms | val+test mAP50 | val+test mAP50-95 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(rows, key=lambda r: (r[2], r[1], r[3])):
        mark = " **(chosen)**" if r == best else ""
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.4f} | {r[5]:.4f}{mark} |")
    if best:
        lines += [
            "",
            f"Budget: FP32 640x640 on ONNX Runtime, {budget:.1f} ms. Highest mAP50-95 within it: "
            f"{best[1]} {best[0]} on {best[2]} ({best[3]:.1f} ms, {best[5]:.4f}).",
        ]
    (out / "front.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for kind in ("fp32", "int8"):
        for backend, marker in (("onnxruntime", "o"), ("openvino", "s")):
            pts = sorted((r[3], r[5], r[0]) for r in rows if r[1] == kind and r[2] == backend)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=f"{kind} {backend}")
                for x, y, size in pts:
                    ax.annotate(size, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if budget is not None:
        ax.axvline(budget, color="grey", linestyle="--", linewidth=0.8, label="FP32 640x640 ONNX Runtime")
    ax.set_xlabel("end-to-end latency per frame (ms)")
    ax.set_ylabel("val+test mAP50-95")
    ax.set_title(f"accuracy-latency front ({cpu['name']}, {lat['threads']} threads)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "front.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", required=True, help="QAT or PTQ checkpoint (ONNX Runtime layout)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--sizes", nargs="+", default=["640x640", "384x640", "544x960"], help="HxW")
    parser.add_argument("--phase", choices=["accuracy", "latency", "all"], default="all")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", default="docs/results/front")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = export_all(args.fp32, args.int8, [parse_size(s) for s in args.sizes], out / "files")
    acc = (
        accuracy(files, args.data, out / "accuracy.json")
        if args.phase in ("accuracy", "all")
        else json.loads((out / "accuracy.json").read_text())
    )
    if args.phase in ("latency", "all"):
        report(acc, latency(files, args.data, args.runs, out), out)


if __name__ == "__main__":
    main()

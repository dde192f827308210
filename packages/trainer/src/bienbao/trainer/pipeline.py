"""``bienbao pipeline``: FP32 fine-tune -> PTQ -> QAT -> export -> evaluate -> bench -> report.

Each step writes its outputs and is recorded in ``<logs>/pipeline/state.json``; an interrupted
pipeline resumes after the last finished step (``--restart`` starts over). With no arguments it
fine-tunes the shipped sign model on the embedded sample (``datasets/vn-signs-sample``) at a size
that finishes in minutes on two CPU cores and says so; with ``--data`` and ``--model`` it is the
real workflow, driven by ``configs/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bienbao.core.files import atomic_write_text
from bienbao.trainer.config import QATConfig, TrainConfig

__all__ = ["STEPS", "PipelineOptions", "run_pipeline"]

STEPS = ("fp32", "ptq", "qat", "export", "evaluate", "bench", "report")


@dataclass(frozen=True)
class PipelineOptions:
    train: TrainConfig
    qat: QATConfig
    split: str = "test"
    bench_runs: int = 20
    restart: bool = False
    #: what the export step writes besides the ONNX files (configs/export.yaml ``formats``):
    #: ``tflite`` (the QAT model as INT8 TFLite), ``engine`` (a TensorRT engine of it)
    export_formats: tuple[str, ...] = ("onnx",)

    @property
    def folder(self) -> Path:
        return Path(self.train.paths.logs) / "pipeline"


def _say(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


class _State:
    def __init__(self, folder: Path, restart: bool) -> None:
        self.path = folder / "state.json"
        folder.mkdir(parents=True, exist_ok=True)
        self.data = {} if restart or not self.path.exists() else json.loads(self.path.read_text())

    def done(self, step: str) -> bool:
        return step in self.data

    def record(self, step: str, outputs: dict, seconds: float) -> None:
        self.data[step] = {"outputs": outputs, "seconds": round(seconds, 1)}
        atomic_write_text(self.path, json.dumps(self.data, indent=2))

    def outputs(self, step: str) -> dict:
        return self.data[step]["outputs"]


def _fp32(options: PipelineOptions) -> dict:
    from bienbao.trainer.runs.fp32 import train_fp32

    return {"checkpoint": str(train_fp32(options.train))}


def _ptq(options: PipelineOptions, state: _State) -> dict:
    from bienbao.trainer.runs.ptq import run_ptq

    weights = state.outputs("fp32")["checkpoint"]
    return {"checkpoint": str(run_ptq(options.train, weights, options.qat.quantization, options.qat.calibration))}


def _qat(options: PipelineOptions, state: _State) -> dict:
    from bienbao.trainer.runs.qat import run_qat

    qat = replace(options.qat, weights=state.outputs("fp32")["checkpoint"])
    return {"checkpoint": str(run_qat(options.train, qat))}


def _export(options: PipelineOptions, state: _State) -> dict:
    """ONNX of all three models (the ONNX Runtime comparison), then the other configured formats
    of the QAT model, through the same registry as ``bienbao export``. Keys: fp32, ptq, qat
    (ONNX), qat_<format> (qat_openvino, qat_tflite, qat_engine)."""
    from bienbao.trainer.config import load_quantization
    from bienbao.trainer.export import ExportSpec, export

    target = load_quantization(options.qat.quantization).target
    folder = Path(options.train.paths.checkpoints).parent / "exported"
    imgsz = options.train.imgsz

    def exported(step: str, layout: str, formats: tuple[str, ...]) -> dict[str, str]:
        spec = ExportSpec(Path(state.outputs(step)["checkpoint"]), folder, formats, layout, imgsz)
        return {artifact.format: str(artifact.path) for artifact in export(spec)}

    others = tuple(f for f in options.export_formats if f != "onnx")
    if others:
        _say(f"exporting the QAT model as ONNX and {', '.join(others)}")
    qat = exported("qat", target, ("onnx", *others))  # one call: the IR and the engine reuse its ONNX file
    outputs = {
        "fp32": exported("fp32", "fp32", ("onnx",))["onnx"],
        "ptq": exported("ptq", target, ("onnx",))["onnx"],
        "qat": qat.pop("onnx"),
    }
    outputs.update({f"qat_{name}": path for name, path in qat.items()})
    return outputs


def _evaluate(options: PipelineOptions, state: _State) -> dict:
    from bienbao.trainer.evaluation.evaluate import evaluate

    results = {}
    kinds = {"fp32": "PyTorch", "ptq": "fake-quant", "qat": "fake-quant"}
    models = {f"{step} ({kind})": state.outputs(step)["checkpoint"] for step, kind in kinds.items()}
    models.update({f"{k} ({Path(v).suffix[1:].upper()}, runtime)": v for k, v in state.outputs("export").items()})
    for name, model in models.items():
        _say(f"evaluating {name} on the {options.split} split")
        results[name] = evaluate(model, options.train.data, options.split, options.train.imgsz).to_dict()
    path = options.folder / "evaluation.json"
    atomic_write_text(path, json.dumps(results, indent=2, ensure_ascii=False))
    return {"evaluation": str(path)}


def _bench(options: PipelineOptions, state: _State) -> dict:
    import cv2

    from bienbao.bench import build_result, run_benchmark
    from bienbao.bench.report import plot
    from bienbao.trainer.evaluation.evaluate import split_images

    exported = state.outputs("export")  # fp32 first: the ratios are against it
    frames = [cv2.imread(str(p)) for p in split_images(Path(options.train.data), options.split)[:8]]
    runs, interrupted = run_benchmark(list(exported.values()), frames, runs=options.bench_runs, warmup=2, threads=None)
    result = build_result(
        runs,
        {"runs": options.bench_runs, "warmup": 2, "threads": None, "backend": "auto", "source": options.split},
        interrupted,
    )
    path = options.folder / "bench.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    chart = plot(result, options.folder / "latency.png")
    return {"bench": str(path), "chart": str(chart) if chart else None}


def _report(options: PipelineOptions, state: _State) -> dict:
    evaluation = json.loads(Path(state.outputs("evaluate")["evaluation"]).read_text())
    bench = json.loads(Path(state.outputs("bench")["bench"]).read_text())
    lines = [
        "# bienbao pipeline report",
        "",
        f"Data: `{options.train.data}` ({options.split} split), image size {options.train.imgsz}; "
        f"FP32 {options.train.epochs} epoch(s) from `{options.train.model}`, QAT {options.qat.epochs} epoch(s), "
        f"policy `{options.qat.quantization}`.",
        "",
        "## Accuracy",
        "",
        "| model | mAP50 | mAP50-95 | precision | recall | evaluator |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in evaluation.items():
        lines.append(
            f"| {name} | {row['map50']:.4f} | {row['map50_95']:.4f} | {row['precision']:.4f} | "
            f"{row['recall']:.4f} | {row['evaluator']} |"
        )
    lines += [
        "",
        "## Speed and size (ONNX Runtime on this machine, interleaved runs)",
        "",
        "| model | size MB | end-to-end mean ms | p90 ms | vs FP32 |",
        "|---|---|---|---|---|",
    ]
    for model in bench["models"]:
        e2e = model["latency_ms"]["end_to_end"]
        lines.append(
            f"| {model['name']} | {model['file_size_bytes'] / 1e6:.2f} | {e2e['mean']:.1f} | "
            f"{e2e['p90']:.1f} | {model['ratio_vs_first']:.2f}x |"
        )
    lines += ["", f"Device: {bench['device']['cpu']} ({bench['device']['cores']} cores).", ""]
    if state.outputs("bench").get("chart"):
        lines.append("![latency](latency.png)")
    from bienbao.trainer.evaluation.compare import example_frames

    exported = state.outputs("export")
    shown = [
        (f"{step} ({Path(exported[step]).suffix[1:].upper()})", Path(exported[step]))
        for step in ("fp32", "ptq", "qat")
        if step in exported
    ]
    frames = example_frames(shown, Path(options.train.data), options.split, options.folder / "examples", 2)
    lines += [
        "",
        "## Example frames",
        "",
        f"The {options.split} frames with the most labelled signs; detections at confidence 0.25, "
        f"top to bottom: {', '.join(label for label, _ in shown)}.",
        "",
    ]
    lines += [f"![{frame.stem}](examples/{frame.name})" for frame in frames]
    path = options.folder / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return {"report": str(path)}


def run_pipeline(options: PipelineOptions) -> Path:
    """Run (or resume) every step; returns the report's path."""
    if "engine" in options.export_formats:  # checked before hours of training, not after
        from bienbao.quant import ConfigError
        from bienbao.trainer.config import load_quantization
        from bienbao.trainer.formats import check_combination

        target = load_quantization(options.qat.quantization).target
        try:
            check_combination(target, options.export_formats)
        except ValueError as exc:
            raise ConfigError(f"{options.qat.quantization} trains the {target} layout: {exc}") from None
    state = _State(options.folder, options.restart)
    handlers = {
        "fp32": lambda: _fp32(options),
        "ptq": lambda: _ptq(options, state),
        "qat": lambda: _qat(options, state),
        "export": lambda: _export(options, state),
        "evaluate": lambda: _evaluate(options, state),
        "bench": lambda: _bench(options, state),
        "report": lambda: _report(options, state),
    }
    for index, step in enumerate(STEPS, 1):
        if state.done(step):
            _say(f"step {index}/{len(STEPS)} {step}: already done ({state.data[step]['seconds']} s), skipping")
            continue
        _say(f"step {index}/{len(STEPS)} {step} ...")
        start = time.perf_counter()
        outputs = handlers[step]()
        state.record(step, outputs, time.perf_counter() - start)
        _say(f"step {index}/{len(STEPS)} {step} done in {time.perf_counter() - start:.0f} s: {outputs}")
    report = Path(state.outputs("report")["report"])
    _say(f"report: {report}")
    return report

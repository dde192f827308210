"""``bienbao compare`` and ``bienbao analyze error|sensitivity|activations|drift``.

Registered through the ``bienbao.commands`` entry points; heavy imports happen in the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bienbao.core.files import atomic_write_text
from bienbao.trainer.cli.commands import _checked, _run

QUANTIZATION = "./configs/quantization.yaml, else the packaged default"

__all__ = ["register_analyze", "register_compare"]


# -- compare --------------------------------------------------------------------------------------


def register_compare(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="FP32 vs PTQ vs QAT (any models) side by side on one split, with a report",
        description="Evaluates every --model on one split (checkpoints by ultralytics' validator, exported files "
        "through bienbao.runtime) and writes compare.json, compare.md and compare.html with per-class AP bars, "
        "precision-recall curves, latency and example frames with each model's detections. The first model is "
        "the reference the others' drops are measured against; for exported files each difference gets a paired "
        "bootstrap 95%% interval over the images (--bootstrap). --split val+test scores both held-out splits "
        "together: the question 'which model is better' wants every frame there is.",
        epilog="example: bienbao compare --data D.yaml --split test --model fp32=fp32.pt "
        "--model ptq=models/exported/onnx/ptq_best_onnxruntime.onnx "
        "--model qat=models/exported/onnx/qat_best_onnxruntime.onnx",
    )
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="[LABEL=]PATH",
        help="a checkpoint (.pt) or exported file (.onnx, .tflite, .engine); repeat, reference first",
    )
    parser.add_argument("--data", required=True, help="dataset YAML")
    parser.add_argument("--split", default="test", help="test (default), val, train, or joined: val+test")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="resamples of the paired bootstrap over images (default 1000; 0: none)",
    )
    parser.add_argument("--imgsz", type=int, default=640, help="image size for checkpoints (exports use their own)")
    parser.add_argument("--examples", type=int, default=4, help="example frames drawn per model (default 4; 0: none)")
    parser.add_argument("--out", default="reports/compare", help="output folder (default reports/compare)")
    parser.set_defaults(handler=_run(_checked(_compare)), prog=parser.prog)
    return parser


def _compare(args: argparse.Namespace) -> None:
    from bienbao.trainer.evaluation.compare import compare, parse_model_spec

    models = [parse_model_spec(spec) for spec in args.models]
    compared = compare(models, args.data, args.split, args.out, args.imgsz, args.examples, bootstrap=args.bootstrap)
    for model in compared:
        e = model.evaluation
        paired = (
            f"  vs {compared[0].label}: {model.difference.text()} mAP50-95 points (95% CI)" if model.difference else ""
        )
        print(
            f"{model.label:12s} mAP50 {e.map50:.4f}  mAP50-95 {e.map50_95:.4f}  {model.latency_ms:6.1f} ms/img  "
            f"{model.size_mb:6.2f} MB  ({model.path}){paired}"
        )
    print(f"report: {Path(args.out) / 'compare.md'} and compare.html")


# -- analyze --------------------------------------------------------------------------------------


def register_analyze(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "analyze",
        help="quantization analysis: per-layer error, sensitivity, activation ranges, QAT drift",
        description="Tools to see where quantization hurts a QAT/PTQ checkpoint and how a QAT run went. "
        "Each writes its files into --out (default reports/analyze/<tool>).",
    )
    tools = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")

    error = tools.add_parser(
        "error",
        help="SQNR and cosine similarity of every conv block's output",
        description="Runs the quantized checkpoint and a float reference on the same images "
        "and compares every conv block's output. The reference is --fp32 if given, else the "
        "same checkpoint with its quantizers off (pure quantization error). Writes "
        "layer_error.json, layer_error.md and layer_error.png.",
    )
    error.add_argument("--model", required=True, help="QAT or PTQ checkpoint (.pt)")
    error.add_argument("--fp32", help="FP32 checkpoint to compare against (default: the model, quantizers off)")
    _images(error, 8)
    error.set_defaults(handler=_run(_checked(_error)))

    sens = tools.add_parser(
        "sensitivity",
        help="per-layer sensitivity ranking and a policy keeping the worst float",
        description="For each quantized layer: mAP50 on a subset with only that layer quantized, "
        "and with only that layer left float (2 evaluations per layer: minutes per layer on a "
        "CPU at 640; narrow with --layers). Writes sensitivity.json, sensitivity.md and "
        "quantization.yaml: --base with the top-k layers kept in float (or 16-bit weights), "
        "ready for `bienbao qat --quantization`.",
    )
    sens.add_argument("--model", required=True, help="QAT or PTQ checkpoint (.pt)")
    sens.add_argument("--layers", action="append", help="glob over layer names (e.g. 'model.2*'); repeatable")
    sens.add_argument("--top-k", type=int, default=3, help="layers the written policy keeps in higher precision")
    sens.add_argument("--base", help=f"policy the rules are added to (default {QUANTIZATION})")
    _images(sens, 32, split="val")
    sens.set_defaults(handler=_run(_checked(_sensitivity)))

    acts = tools.add_parser(
        "activations",
        help="activation and weight histograms with the quantization ranges",
        description="A PNG grid: what each activation quantizer sees (log histogram) with its "
        "representable range in red and the share clipped; each quantized conv's weights in "
        "units of its channel's step with the code range. Writes activations.png.",
    )
    acts.add_argument("--model", required=True, help="QAT or PTQ checkpoint (.pt)")
    acts.add_argument("--layers", action="append", help="glob over quantizer/layer names; repeatable")
    acts.add_argument("--max-plots", type=int, default=24, help="panels in the grid (spread over the network)")
    _images(acts, 4)
    acts.set_defaults(handler=_run(_checked(_activations)))

    drift = tools.add_parser(
        "drift",
        help="the accuracy-drift chart of a QAT run",
        description="Reads a QAT run's drift.csv (logs/<name>/drift.csv) and plots the fake-quant "
        "model's mAP per epoch against the FP32 checkpoint the run started from (validated "
        "once, by the same validator), with the schedule's phases shaded. Writes drift.png.",
    )
    drift.add_argument("run", help="the run's log folder (logs/qat) or its drift.csv")
    drift.add_argument("--out", help="output folder (default reports/analyze/drift)")
    drift.set_defaults(handler=_run(_checked(_drift)))
    parser.set_defaults(prog=parser.prog)
    return parser


def _images(parser: argparse.ArgumentParser, count: int, split: str = "train") -> None:
    parser.add_argument("--data", required=True, help="dataset YAML")
    parser.add_argument("--split", default=split, help=f"where the images come from (default {split})")
    parser.add_argument("--images", type=int, default=count, help=f"images used (default {count})")
    parser.add_argument("--imgsz", type=int, default=640, help="network input size (default 640)")
    parser.add_argument("--out", help="output folder (default reports/analyze/<tool>)")


def _out(args: argparse.Namespace) -> Path:
    out = Path(args.out or f"reports/analyze/{args.tool}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _error(args: argparse.Namespace) -> None:
    from bienbao.trainer.evaluation.analyze import error_chart, error_table, errors_to_dicts, layer_error, sample_frames

    out = _out(args)
    errors = layer_error(args.model, sample_frames(args.data, args.split, args.images, args.imgsz), args.fp32)
    reference = args.fp32 or f"{args.model} with quantizers off"
    atomic_write_text(
        out / "layer_error.json",
        json.dumps({"model": args.model, "reference": reference, "layers": errors_to_dicts(errors)}, indent=2) + "\n",
    )
    atomic_write_text(
        out / "layer_error.md",
        f"# Per-layer quantization error\n\n{args.model} against {reference}, "
        f"{args.images} {args.split} images at {args.imgsz}. Accumulated: "
        "the block's output in the quantized network (every earlier error "
        "included); local: the block alone, fed the reference's input.\n\n"
        f"{error_table(errors)}\n\n![error](layer_error.png)\n",
    )
    error_chart(errors, out / "layer_error.png")
    worst = sorted(errors, key=lambda e: e.local_sqnr_db)[:5]
    print(
        "lowest local SQNR (the block's own error): " + ", ".join(f"{e.name} {e.local_sqnr_db:.1f} dB" for e in worst)
    )
    print(f"accumulated SQNR at the last block: {errors[-1].sqnr_db:.1f} dB")
    print(f"wrote {out}/layer_error.json, layer_error.md, layer_error.png")


def _sensitivity(args: argparse.Namespace) -> None:
    import yaml

    from bienbao.trainer.config import load_policy
    from bienbao.trainer.evaluation.analyze import layer_sensitivity, sensitivity_policy

    out = _out(args)
    report = layer_sensitivity(args.model, args.data, args.split, args.images, args.imgsz, args.layers or ["*"])
    atomic_write_text(out / "sensitivity.json", json.dumps(report.to_dict(), indent=2) + "\n")
    rows = [
        f"| {i} | {layer.name} | {report.drop_when_quantized(layer):+.4f} | {report.gain_when_float(layer):+.4f} |"
        for i, layer in enumerate(report.ranking(), 1)
    ]
    atomic_write_text(
        out / "sensitivity.md",
        f"# Layer sensitivity\n\n{args.model}, mAP50 on {args.images} {args.split} images at {args.imgsz}: "
        f"float {report.float_metric:.4f}, quantized {report.quantized_metric:.4f}.\n\n"
        "| rank | layer | drop with only it quantized | gain with only it float |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n",
    )
    policy = out / "quantization.yaml"
    from bienbao.trainer.config_files import locate_config

    base = locate_config("quantization", args.base).path
    atomic_write_text(
        policy,
        f"# written by bienbao analyze sensitivity from {args.model}: {base} plus the "
        f"{args.top_k} most sensitive layer(s) kept float\n"
        + yaml.safe_dump(sensitivity_policy(base, report, args.top_k), sort_keys=False),
    )
    load_policy(policy)  # what bienbao qat will do with it: fail here, not there
    print("most sensitive: " + ", ".join(layer.name for layer in report.ranking()[: max(args.top_k, 3)]))
    tied = report.ties_at(args.top_k)
    if tied:
        print(
            f"warning: the metric does not separate the layers: {len(tied)} layers ({', '.join(tied[:5])}"
            f"{' ...' if len(tied) > 5 else ''}) score the same as #{args.top_k}, so the top {args.top_k} in "
            f"{policy.name} is an arbitrary pick among them; use more --images, or bienbao calibrate --critical "
            f"{args.top_k} (ranked by output error, which separates layers on a few images)",
            file=sys.stderr,
        )
    print(f"wrote {out}/sensitivity.json, sensitivity.md and {policy} (bienbao qat --quantization {policy})")


def _activations(args: argparse.Namespace) -> None:
    from bienbao.trainer.evaluation.analyze import activation_histograms, sample_frames

    out = _out(args)
    frames = sample_frames(args.data, args.split, args.images, args.imgsz)
    path = activation_histograms(args.model, frames, out / "activations.png", args.layers or ["*"], args.max_plots)
    print(f"wrote {path}")


def _drift(args: argparse.Namespace) -> None:
    from bienbao.trainer.evaluation.analyze import drift_chart, read_drift

    out = _out(args)
    rows = read_drift(args.run)
    path = drift_chart(rows, out / "drift.png")
    last = rows[-1]
    print(
        f"{len(rows)} epoch(s); last: QAT mAP50 {float(last['qat_mAP50']):.4f} vs the FP32 start "
        f"{float(last['fp32_mAP50']):.4f}"
    )
    print(f"wrote {path}")

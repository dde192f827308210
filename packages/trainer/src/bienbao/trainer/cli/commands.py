"""``bienbao train | qat | calibrate | check-data``: registered through the ``bienbao.commands``
entry points. This module stays import-light (no torch, no ultralytics) so ``bienbao --help`` is
fast; each handler imports what it needs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from bienbao.core.files import atomic_write_text
from bienbao.runtime.backends import BACKENDS, PRECISIONS
from bienbao.trainer.yaml_text import parse_yaml

__all__ = [
    "register_calibrate",
    "register_check_data",
    "register_evaluate",
    "register_export",
    "register_init",
    "register_pipeline",
    "register_qat",
    "register_train",
]

#: how --help names a default config (see bienbao.trainer.config_files)
BASE = "./configs/base.yaml, else the packaged default"
QAT = "./configs/qat.yaml, else the packaged default"
EXPORT = "./configs/export.yaml, else the packaged default"


def _environment(seam: bool = True) -> None:
    """ultralytics offline and with its settings in the run folder, not the home folder; with
    ``seam``, the ultralytics adapter entered (commands that never touch a model, check-data and
    init, leave torch and ultralytics unimported: they answer in a fraction of a second)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path("logs/.ultralytics").resolve()))
    if not seam:
        return
    # before any handler imports ultralytics: some releases import torchvision eagerly (8.4.0 did),
    # and torchvision's ops must be in place first on CPU-only torch (bienbao.trainer.ultralytics.torchvision_ops)
    from bienbao.trainer.ultralytics.torchvision_ops import ensure_torchvision_ops

    ensure_torchvision_ops()


def _set_values(pairs: list[str]) -> dict[str, Any]:
    """``--set a.b=1`` pairs -> nested overrides (values parsed as YAML)."""
    from bienbao.core import UserError

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set {pair!r}: write KEY=VALUE, e.g. --set ultralytics.mosaic=0.5")
        target = result
        *parents, leaf = key.split(".")
        for depth, parent in enumerate(parents):
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise UserError(f"--set {pair!r}: {'.'.join(parents[: depth + 1])} is set to a value above")
        try:
            target[leaf] = parse_yaml(raw)
        except yaml.YAMLError as exc:
            raise UserError(f"--set {pair!r}: the value is not valid YAML ({exc})") from exc
    return result


def _train_config(args: argparse.Namespace, name: str | None = None, sets: list[str] | None = None):
    """The base config with the command line's values (and ``--set`` pairs) over it."""
    from bienbao.trainer.config import load_train_config, merge

    overrides = {
        k: getattr(args, k)
        for k in ("model", "data", "imgsz", "epochs", "batch", "device", "workers")
        if getattr(args, k, None) is not None
    }
    if name:
        overrides["name"] = name
    pairs = getattr(args, "set", []) if sets is None else sets
    return load_train_config(args.config, merge(overrides, _set_values(pairs)))


def _common(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", help=f"base config (data, image size, paths; default {BASE})")
    parser.add_argument("--data", help="dataset YAML (overrides the config)")
    parser.add_argument("--imgsz", type=int, help="image size (multiple of 32; 640 keeps the tiny signs)")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--device", help='"cpu", "0", "0,1" (default: CUDA if present)')
    parser.add_argument("--workers", type=int, help="dataloader workers")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=f"override a config key (repeatable): KEY=VALUE for the base config, e.g. ultralytics.mosaic=0.5{what}",
    )


def _critical_option(parser: argparse.ArgumentParser) -> None:
    """``--critical K`` of qat and calibrate (``calibration.critical_top_k``)."""
    parser.add_argument(
        "--critical",
        type=int,
        metavar="K",
        help="keep the K layers float whose quantization alone hurts the output most on the calibration "
        "images (ranked in forward passes, seconds; recorded in the checkpoint and the summary)",
    )


def _run(handler, seam: bool = True):
    """Wrap a handler: config and data errors become one clear line, not a traceback. ``seam``:
    the handler loads models (torch and ultralytics are prepared first)."""

    def run(args: argparse.Namespace) -> int:
        from bienbao.core import UserError
        from bienbao.runtime import MissingDependencyError
        from bienbao.trainer.dataset import DatasetError

        _environment(seam)
        try:
            handler(args)
        except UserError:  # bienbao.quant's ConfigError among them: the dispatcher prints it
            raise
        except (DatasetError, MissingDependencyError) as exc:
            raise UserError(str(exc)) from exc
        except OSError as exc:  # a missing file, a read-only or full output folder: the path is in the message
            raise UserError(str(exc) if exc.filename is None else f"{exc.filename}: {exc.strerror}") from exc
        return 0

    return run


# -- train --------------------------------------------------------------------------------------


def register_train(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="FP32 fine-tuning of a pretrained YOLOv8 checkpoint",
        description="FP32 fine-tuning on the sign data, driven by configs/base.yaml. Checks the dataset first; "
        "writes models/checkpoints/<name>/{best,last}.pt, logs/<name>/ (ultralytics' run folder, results.csv) "
        "and logs/tensorboard/<name>/. Resume an interrupted run with --set ultralytics.resume=true "
        "--model logs/<name>/weights/last.pt.",
    )
    _common(parser, "")
    parser.add_argument("--model", help="pretrained checkpoint (yolov8n.pt, yolov8s.pt, ...) or model YAML")
    parser.add_argument("--epochs", type=int, help="epochs")
    parser.add_argument("--name", help="run name (default from the config: fp32)")
    _exist_ok_option(parser)
    parser.set_defaults(handler=_run(_train), prog=parser.prog)
    return parser


def _exist_ok_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exist-ok",
        action="store_true",
        help="reuse --name even if a run of that name exists (its files are overwritten); by default a "
        "taken name gets a number (qat2, qat3...) so no run overwrites another",
    )


def _train(args: argparse.Namespace) -> None:
    import dataclasses

    from bienbao.trainer.runs.fp32 import train_fp32
    from bienbao.trainer.runs.layout import claim_run, lock_run

    config = _train_config(args, args.name)
    if config.ultralytics.get("resume"):  # the resumed run keeps its name; nobody else may write it
        lock = lock_run(config.model)
    else:
        name, lock = claim_run(config, config.name, args.exist_ok)
        config = dataclasses.replace(config, name=name)
    try:
        train_fp32(config)
    finally:
        lock.release()


# -- qat ----------------------------------------------------------------------------------------


def register_qat(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "qat",
        help="quantization-aware fine-tuning of an FP32 checkpoint",
        description="QAT driven by configs/qat.yaml and the layer policy configs/quantization.yaml: calibration, "
        "quantizers enabled at configured epochs (by default every one from the start, the first two convs "
        "float; progressive: weights first), observers and BN statistics frozen at configured "
        "epochs, optional distillation from the FP32 model. Writes models/checkpoints/<name>/, logs/<name>/ "
        "(results.csv, drift.csv: fake-quant metrics next to FP32) and logs/tensorboard/<name>/.",
    )
    _common(parser, "; qat.KEY=VALUE for the QAT config, e.g. qat.schedule.freeze_bn_epoch=3")
    parser.add_argument("--qat-config", help=f"QAT config (default {QAT})")
    parser.add_argument(
        "--experiment",
        help="an experiment file, or the name of one in configs/experiments/ "
        "(e.g. exp4_float_head): its quantization policy and qat overrides replace the defaults",
    )
    parser.add_argument("--weights", help="FP32 checkpoint to start from")
    parser.add_argument("--quantization", help="layer policy YAML")
    parser.add_argument("--epochs", type=int, help="QAT epochs")
    parser.add_argument("--name", help="run name (default from the QAT config: qat)")
    parser.add_argument("--resume", metavar="LAST_PT", help="resume an interrupted run from its weights/last.pt")
    _exist_ok_option(parser)
    _critical_option(parser)
    parser.set_defaults(handler=_run(_qat), prog=parser.prog)
    return parser


def _qat_config(args: argparse.Namespace, sets: list[str], epochs: int | None = None, name: str | None = None):
    """The QAT config with --weights/--quantization, the given epochs and name, and --set qat.* over it."""
    from bienbao.trainer.config import load_qat_config, merge

    values = {"weights": args.weights, "quantization": args.quantization, "epochs": epochs, "name": name}
    overrides = {key: value for key, value in values.items() if value is not None}
    return load_qat_config(args.qat_config, merge(overrides, _set_values(sets)), experiment=args.experiment)


def _split_sets(pairs: list[str] | None, critical: int | None = None) -> tuple[list[str], list[str]]:
    """``--set qat.KEY=V`` goes to the QAT config, any other ``--set`` to the base config
    (``--critical K`` is ``--set qat.calibration.critical_top_k=K``). ``--set ultralytics.KEY=V``
    goes to both: the QAT config's own ``ultralytics:`` values (qat.yaml's mosaic, say) would
    otherwise win over what the command line asked."""
    pairs = [*(pairs or []), *([f"qat.calibration.critical_top_k={critical}"] if critical is not None else [])]
    base = [p for p in pairs if not p.startswith("qat.")]
    qat = [p.removeprefix("qat.") for p in pairs if p.startswith("qat.")]
    return base, qat + [p for p in base if p.startswith("ultralytics.")]


def _qat(args: argparse.Namespace) -> None:
    import dataclasses

    from bienbao.trainer.runs.layout import claim_run, lock_run
    from bienbao.trainer.runs.qat import run_qat

    base_sets, qat_sets = _split_sets(args.set, args.critical)
    qat = _qat_config(args, qat_sets, epochs=args.epochs, name=args.name)
    train = _train_config(args, sets=base_sets)
    if args.resume:
        lock = lock_run(args.resume)
    else:
        name, lock = claim_run(train, qat.name, args.exist_ok)
        qat = dataclasses.replace(qat, name=name)
    try:
        run_qat(train, qat, resume=args.resume)
    finally:
        lock.release()


# -- calibrate ----------------------------------------------------------------------------------


def register_calibrate(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "calibrate",
        help="post-training quantization (PTQ) with the QAT policy, no training",
        description="Calibrates the FP32 checkpoint's quantizers (same policy as QAT) on N training batches "
        "and writes models/checkpoints/<name>/best.pt, a fake-quant checkpoint that bienbao export and "
        "ultralytics' val accept: the baseline QAT must beat.",
    )
    _common(parser, "; qat.KEY=VALUE for the QAT config, e.g. qat.calibration.batch_size=4")
    parser.add_argument("--qat-config", help=f"where the defaults come from (default {QAT})")
    parser.add_argument("--experiment", help="an experiment file (or name) whose quantization policy to use")
    parser.add_argument("--weights", help="FP32 checkpoint")
    parser.add_argument("--quantization", help="layer policy YAML")
    parser.add_argument("--batches", type=int, help="calibration batches")
    parser.add_argument("--name", default="ptq", help="output name (default ptq)")
    _exist_ok_option(parser)
    _critical_option(parser)
    parser.set_defaults(handler=_run(_calibrate), prog=parser.prog, epochs=None, model=None)
    return parser


def _calibrate(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from bienbao.trainer.runs.layout import claim_run
    from bienbao.trainer.runs.ptq import run_ptq

    base_sets, qat_sets = _split_sets(args.set, args.critical)
    qat = _qat_config(args, qat_sets)
    calibration = qat.calibration if args.batches is None else replace(qat.calibration, batches=args.batches)
    train = _train_config(args, sets=base_sets)
    name, lock = claim_run(train, args.name, args.exist_ok)
    try:
        run_ptq(train, qat.weights, qat.quantization, calibration, name=name)
    finally:
        lock.release()


# -- export -------------------------------------------------------------------------------------


def register_export(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bienbao.trainer.formats import EXPORT_TARGETS, FORMATS

    parser = subparsers.add_parser(
        "export",
        help="export a QAT/PTQ (or FP32) checkpoint to ONNX Q/DQ, OpenVINO IR, TFLite or a TensorRT engine",
        description="Writes <output>/onnx/*.onnx (Q/DQ with int8 weights, or FP32), <output>/openvino/*.xml + .bin "
        "(OpenVINO IR made from that ONNX file, the openvino extra), <output>/tflite/*.tflite "
        "(INT8 through litert-torch, the optional tflite extra) and <output>/tensorrt/*.engine, each with its "
        "metadata (class names, input size, quantization, source hash; a .json sidecar for TFLite and engines). "
        "The scales are the checkpoint's own: nothing is re-calibrated. Driven by configs/export.yaml.",
    )
    parser.add_argument("--config", help=f"export config (default {EXPORT})")
    parser.add_argument("--checkpoint", help="the checkpoint to export")
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=list(FORMATS),
        help="onnx (default), openvino (IR; needs bienbao-trainer[openvino]), tflite (needs bienbao-trainer[tflite]) "
        "or engine (TensorRT, needs TensorRT); repeatable",
    )
    parser.add_argument(
        "--target",
        choices=list(EXPORT_TARGETS),
        help="the checkpoint's layout: onnxruntime (uint8 around every conv, ONNX Runtime), openvino (uint8 after "
        "each block's activation, OpenVINO), tensorrt (symmetric int8); or fp32: float. It must be the layout the "
        "checkpoint was trained in. TFLite is int8 from any INT8 target (fp32: a float TFLite)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs="+",
        metavar="SIZE",
        help="input size: one (square, 640) or height and width (384 640: a 16:9 camera's frames "
        "fill it, where 640 x 640 spends 44%% of every inference on padding)",
    )
    parser.add_argument(
        "--rect",
        nargs="?",
        const="16:9",
        metavar="W:H",
        help="with one --imgsz: that many pixels across and the short side for a camera of this "
        "aspect, rounded up to 32 (default 16:9: --imgsz 640 --rect gives 384 x 640)",
    )
    parser.add_argument(
        "--weight-bits",
        type=int,
        choices=[7, 8],
        help="weight codes: 8 where int8 products are exact (x86 with VNNI, ARM, Jetson, TensorRT, "
        "LiteRT); 7 for ONNX Runtime on x86 without VNNI (AVX2), whose u8s8 kernels saturate. "
        "Default: the width the checkpoint was trained at (7 with the onnxruntime_cpu preset; regridding "
        "7-bit QAT weights to 8 measured a loss: train at 8 for an 8-bit file). Written into the file; the "
        "runtime warns when a file meets the other kind of CPU",
    )
    parser.add_argument("--output", help="output folder (default models/exported)")
    parser.set_defaults(handler=_run(_export), prog=parser.prog)
    return parser


def _export(args: argparse.Namespace) -> None:
    from bienbao.trainer.config import load_export_config
    from bienbao.trainer.export import ExportError, ExportSpec, export
    from bienbao.trainer.export.tensorrt_engine import EngineBuildError

    overrides = {
        k: getattr(args, k)
        for k in ("checkpoint", "formats", "target", "output", "weight_bits")
        if getattr(args, k) is not None
    }
    size = _export_size(args.imgsz, args.rect)
    if size is not None:
        overrides["imgsz"] = size
    config = load_export_config(args.config, overrides)
    spec = ExportSpec(
        Path(config.checkpoint),
        Path(config.output),
        config.formats,
        config.target,
        config.imgsz,
        config.opset,
        config.weight_bits,
        config.fp16,
    )
    try:
        for artifact in export(spec):
            print(artifact.summary)
    except (ExportError, EngineBuildError) as exc:
        from bienbao.core import UserError

        raise UserError(str(exc)) from exc


def _export_size(imgsz: list[int] | None, rect: str | None):
    """``--imgsz`` / ``--rect`` -> the config's imgsz (``None``: the config's own)."""
    from bienbao.core import UserError
    from bienbao.trainer.sizes import input_size, parse_aspect, rect_size

    try:
        if rect is not None:
            if not imgsz or len(imgsz) != 1:
                raise ValueError("--rect takes one --imgsz (the long side), e.g. --imgsz 640 --rect")
            return list(rect_size(imgsz[0], parse_aspect(rect)))
        if imgsz is None:
            return None
        if len(imgsz) > 2:
            raise ValueError(f"--imgsz {' '.join(map(str, imgsz))}: one size, or height and width")
        return list(input_size(imgsz[0] if len(imgsz) == 1 else tuple(imgsz)))
    except ValueError as exc:
        raise UserError(str(exc)) from None


# -- evaluate -----------------------------------------------------------------------------------


def register_evaluate(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="mAP50, mAP50-95, precision, recall, per-class AP of a checkpoint or an exported file",
        description="A .pt checkpoint (FP32, PTQ, QAT fake-quant) is scored by ultralytics' validator; an exported "
        ".onnx/.tflite/.engine runs through bienbao.runtime (the deployed pre-processing, backend and NMS) and is "
        "scored "
        "with the same matching rule, so the number is the deployed model's. Prints a table; --json writes the "
        "result (keys documented in bienbao/trainer/evaluate.py).",
    )
    parser.add_argument("--model", required=True, help="checkpoint (.pt) or exported model (.onnx, .tflite, .engine)")
    parser.add_argument("--data", required=True, help="dataset YAML")
    parser.add_argument("--split", default="val", help="val (default) or test")
    parser.add_argument("--imgsz", type=int, default=640, help="image size for checkpoints (exports use their own)")
    parser.add_argument("--conf", type=float, default=0.001, help="confidence threshold (mAP wants a low one)")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (ultralytics' val default)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *BACKENDS],
        help="runtime backend for an exported file (default: from its suffix; openvino runs .onnx, .xml and "
        "ultralytics' *_openvino_model/ folders)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="OpenVINO's inference precision for the float parts (default: OpenVINO's choice, bf16 on CPUs with "
        "AVX512-BF16 or AMX; f32 gives the file's own arithmetic)",
    )
    parser.add_argument("--json", help="write the result to this JSON file")
    parser.set_defaults(handler=_run(_checked(_evaluate)), prog=parser.prog)
    return parser


def _checked(handler):
    """A model or dataset that does not fit (other classes, an undecodable image) is one clear line."""

    def run(args: argparse.Namespace) -> None:
        from bienbao.core import UserError

        try:
            handler(args)
        except ValueError as exc:
            raise UserError(str(exc)) from exc

    return run


def _evaluate(args: argparse.Namespace) -> None:
    import json

    from bienbao.core import UserError
    from bienbao.core.files import check_distinct_paths
    from bienbao.trainer.evaluation.evaluate import evaluate

    try:  # before minutes of evaluation: --json must not name the model or the data file
        check_distinct_paths({"--json": args.json}, {"--model": args.model, "--data": args.data})
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    result = evaluate(
        args.model,
        args.data,
        args.split,
        args.imgsz,
        args.conf,
        args.iou,
        backend=args.backend,
        precision=args.precision,
    )
    print(result.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.json), json.dumps(result.to_dict(), indent=2, ensure_ascii=False))


# -- pipeline -----------------------------------------------------------------------------------

SAMPLE_EPOCHS, SAMPLE_QAT_EPOCHS = 3, 2


def register_pipeline(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pipeline",
        help="the main job: FP32 -> PTQ -> QAT -> export -> evaluate -> bench -> report",
        description="Runs every step, driven by configs/, and writes logs/pipeline/report.md. With no --data it "
        "fine-tunes the shipped sign model (models/pretrained/) on the embedded sample (datasets/vn-signs-sample: "
        f"{SAMPLE_EPOCHS} FP32 and {SAMPLE_QAT_EPOCHS} QAT epochs, a few minutes on two CPU cores). An interrupted "
        "pipeline resumes after its last finished step; --restart starts over.",
    )
    _common(parser, "; qat.KEY=VALUE for the QAT config")
    parser.add_argument("--qat-config", help=f"QAT config (default {QAT})")
    parser.add_argument(
        "--export-config",
        help=f"export formats besides ONNX (default {EXPORT}: "
        "its formats: tflite and engine add the QAT model as TFLite / TensorRT engine)",
    )
    parser.add_argument(
        "--model",
        help="pretrained checkpoint for the FP32 step (default from the config: the "
        "shipped models/pretrained/yolov8n-vn-signs-fp32.pt; trains from scratch, and says so, when "
        "it is not on disk)",
    )
    parser.add_argument("--epochs", type=int, help="FP32 epochs")
    parser.add_argument("--qat-epochs", type=int, help="QAT epochs")
    parser.add_argument("--split", default="test", help="split to evaluate and benchmark on (default test)")
    parser.add_argument("--bench-runs", type=int, default=20, help="benchmark runs per model (default 20)")
    parser.add_argument("--restart", action="store_true", help="ignore finished steps and start over")
    parser.set_defaults(
        handler=_run(_pipeline),
        prog=parser.prog,
        name=None,
        experiment=None,
        weights=None,
        quantization=None,
        resume=None,
    )
    return parser


def _pipeline(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from bienbao.trainer.config import load_export_config
    from bienbao.trainer.pipeline import PipelineOptions, run_pipeline

    sample = args.data is None
    if sample:
        args.epochs = args.epochs or SAMPLE_EPOCHS
        args.qat_epochs = args.qat_epochs or SAMPLE_QAT_EPOCHS
    base_sets, qat_sets = _split_sets(args.set)
    # a short QAT run gets the schedule scaled to its epochs (QATSchedule.fit, said in the log); a
    # best.pt from an epoch without activation quantization is refused by the INT8 export
    train = _train_config(args, sets=base_sets)
    if sample:
        print(
            f"[pipeline] no --data: the embedded sample {train.data} (80 real frames): {args.epochs} FP32 and "
            f"{args.qat_epochs} QAT epochs from {train.model}, every step in a few minutes on two CPU cores. "
            "The accuracy is mostly the starting model's; pass --data (and --model) for the real workflow."
        )
    model = Path(train.model)
    if model.suffix == ".pt" and not model.is_file():
        scratch = model.with_suffix(".yaml").name
        print(
            f"[pipeline] pretrained checkpoint {model} not found and nothing is downloaded here: training "
            f"{scratch} FROM SCRATCH. Expect near-zero accuracy on a short run; pass --model with a checkpoint "
            "(e.g. models/pretrained/yolov8n-vn-signs-fp32.pt) for a real fine-tune."
        )
        train = replace(train, model=scratch)
    qat = _qat_config(args, qat_sets, epochs=args.qat_epochs)
    formats = load_export_config(args.export_config).formats
    run_pipeline(PipelineOptions(train, qat, args.split, args.bench_runs, args.restart, formats))


# -- check-data ---------------------------------------------------------------------------------


def register_check_data(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-data",
        help="check a YOLO dataset and report every problem with file names",
        description="Errors (missing folders, malformed label lines, class ids out of range, coordinates outside "
        "[0, 1], images that do not decode) make the exit code 2; warnings (polygon lines, background images) "
        "are reported grouped.",
    )
    parser.add_argument("data", help="dataset YAML")
    parser.add_argument("--no-decode", action="store_true", help="skip decoding every image (faster)")
    parser.set_defaults(handler=_run(_check_data, seam=False), prog=parser.prog)
    return parser


def _check_data(args: argparse.Namespace) -> None:
    from bienbao.trainer.dataset import check_dataset

    report = check_dataset(args.data, decode_images=not args.no_decode)
    print(report.format())
    report.raise_for_errors()


# -- init ---------------------------------------------------------------------------------------


def register_init(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "init",
        help="write editable copies of the default configs into DIR/configs/",
        description="Copies the packaged configs (base, qat, quantization, export and the experiments) into "
        "DIR/configs/. Every command then reads ./configs/<kind>.yaml when run from DIR, else the packaged "
        "default. Relative paths in a config resolve against the config file's folder (../models/checkpoints "
        "is DIR/models/checkpoints). Existing files are never overwritten without --force.",
    )
    parser.add_argument("dir", nargs="?", default=".", help="project folder (default: the current one)")
    parser.add_argument("--force", action="store_true", help="overwrite config files that already exist")
    parser.set_defaults(handler=_run(_init, seam=False), prog=parser.prog)
    return parser


def _init(args: argparse.Namespace) -> None:
    from bienbao.trainer.config_files import init_configs

    written = init_configs(args.dir, force=args.force)
    folder = Path(args.dir) / "configs"
    print(
        f"wrote {len(written)} config file(s) into {folder}: " + ", ".join(str(p.relative_to(folder)) for p in written)
    )
    print(f"edit them, then run bienbao train / qat / calibrate / export from {Path(args.dir)}")

"""ONNX export: Q/DQ graphs for ONNX Runtime or TensorRT, and plain FP32.

The scales in the file are the ones the checkpoint carries (QAT-learned or PTQ-calibrated):
nothing is re-calibrated here. Weights are stored as int8 codes; metadata travels in the file.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from bienbao.core.files import atomic_path, check_writable, file_sha256
from bienbao.quant import QATModule, convert, enable_fake_quant, iter_quantizers, set_weight_bits
from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata, Quantization
from bienbao.trainer.export.qdq_graph import QDQReport, fold_weight_quantizers, qdq_report
from bienbao.trainer.formats import EXPORT_TARGETS
from bienbao.trainer.sizes import ImageSize, input_size, rect_size
from bienbao.trainer.ultralytics.export_heads import heads_for_export
from bienbao.trainer.ultralytics.models import load_detection_model
from bienbao.trainer.ultralytics.qat_model import drop_restated_grids, is_quantized

__all__ = [
    "WEIGHT_BITS",
    "ExportError",
    "ExportResult",
    "ImageSize",
    "apply_weight_bits",
    "describe_quantization",
    "export_onnx",
    "input_size",
    "prepare_for_export",
    "rect_size",
]

log = logging.getLogger("bienbao.trainer.export")
ONNX_TARGETS = EXPORT_TARGETS  # every target makes an ONNX file (bienbao.trainer.formats)


class ExportError(ValueError):
    """An export that makes no sense (the message says why and what to do instead)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata: ModelMetadata
    report: QDQReport

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _activation_schemes(model: nn.Module) -> set[tuple[bool, bool]]:
    """``(symmetric, signed)`` of every activation quantizer that is on."""
    return {
        (q.scheme.symmetric, q.scheme.signed)
        for _, q in iter_quantizers(model, roles=["input", "output"])
        if q.quantizing
    }


def describe_quantization(model: nn.Module, target: str) -> Quantization:
    if target == "fp32":
        return Quantization("fp32")
    acts = _activation_schemes(model)
    weights = {
        (q.scheme.bits, q.scheme.per_channel) for _, q in iter_quantizers(model, roles=["weight"]) if q.quantizing
    }
    act_text = (
        ", ".join(
            sorted(
                f"{'int8 symmetric' if sym and signed else 'uint8 asymmetric' if not signed else 'int8 asymmetric'} per-tensor"  # noqa: E501
                for sym, signed in acts
            )
        )
        or "float"
    )
    weight_text = (
        ", ".join(sorted(f"{bits}-bit codes in int8, {'per-channel' if pc else 'per-tensor'}" for bits, pc in weights))
        or "float"
    )
    layers = [m for m in model.modules() if isinstance(m, QATModule)]
    floats = [m for m in model.modules() if type(m) is nn.Conv2d]
    integer_bits = [bits for bits, _ in weights if bits <= 8]  # wider ones export as float weights
    return Quantization(target, act_text, weight_text, len(layers), len(floats), max(integer_bits, default=0))


#: the weight widths an export writes (``--weight-bits``): 8 where the runtime's int8 products are
#: exact, 7 for ONNX Runtime on x86 without VNNI (``bienbao.runtime.precision``)
WEIGHT_BITS = (7, 8)


def apply_weight_bits(model: nn.Module, weight_bits: int | None, target: str) -> None:
    """Put the weights on the grid the export asks for: ``weight_bits``, or by default the width
    the checkpoint was trained at (in every format: regridding QAT weights trained at 7 bits to 8
    measured a loss, not a gain, docs/results/qat-study/README.md). 7-bit weights become 8-bit codes
    on the same grid with half the step (``FakeQuantize.regrid_bits``). For 8-bit files that gain,
    train at 8 bits (a policy with ``weight: {bits: 8}``)."""
    if target == "fp32" or weight_bits is None:
        return
    if weight_bits not in WEIGHT_BITS:
        raise ExportError(
            f"--weight-bits {weight_bits}: write 8 (exact int8 products: TensorRT, LiteRT, x86 with "
            "VNNI, ARM) or 7 (ONNX Runtime on x86 without VNNI, whose u8s8 kernels saturate)"
        )
    changed = set_weight_bits(model, weight_bits)
    if changed:
        log.info("weights of %d layer(s) regridded to %d bits", changed, weight_bits)


def check_weight_widths(model: nn.Module, checkpoint: Path) -> None:
    """Refuse weight widths no runtime executes as such. ONNX Runtime, OpenVINO, TensorRT and
    LiteRT run 8-bit integer kernels: 2-6-bit codes would sit in int8 containers (no smaller, no
    faster than 8-bit), and wider than 8 bits would have to be float weights. Say which layers."""
    odd = sorted(
        {
            (name.rsplit(".weight_quantizer", 1)[0], q.scheme.bits)
            for name, q in iter_quantizers(model, roles=["weight"])
            if q.quantizing and q.scheme.bits not in WEIGHT_BITS
        }
    )
    if odd:
        shown = ", ".join(f"{name} ({bits}-bit)" for name, bits in odd[:4]) + (
            f" and {len(odd) - 4} more" if len(odd) > 4 else ""
        )
        raise ExportError(
            f"{checkpoint}: weights of {shown}: the runtimes execute 8-bit integer weights (7-bit "
            "codes for ONNX Runtime on x86 without VNNI); narrower codes would be stored as int8 "
            "(no smaller, no faster), wider ones as float. Export with --weight-bits 8 (the same grid, "
            "refined), or train those layers at 8 bits or float (skip: true), as "
            "configs/experiments/exp3_mixed_precision.yaml does"
        )


def check_request(checkpoint: str | Path, output_dir: str | Path, imgsz: ImageSize) -> tuple[Path, Path]:
    """The refusals every export shares: a missing checkpoint, an output folder that is a file, a
    size off the stride."""
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    if not checkpoint.is_file():
        raise ExportError(f"checkpoint {checkpoint} not found")
    if output_dir.exists() and not output_dir.is_dir():
        raise ExportError(f"output folder {output_dir} exists and is a file")
    try:
        input_size(imgsz)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    return checkpoint, output_dir


def require_quantized(model: nn.Module, checkpoint: Path) -> None:
    if not is_quantized(model):
        raise ExportError(
            f"{checkpoint} is an FP32 checkpoint: it has no quantization to export as INT8. Run "
            "`bienbao qat` or `bienbao calibrate` first, or export it with --target fp32"
        )
    activations = [q for _, q in iter_quantizers(model, roles=["input", "output"])]
    if activations and not any(q.quantizing for q in activations):
        raise ExportError(
            f"{checkpoint}: its {len(activations)} activation quantizers were never enabled (the QAT "
            "schedule's enable_activations_epoch came after the run's last epoch?), so an INT8 file "
            "would have no activation Q/DQ: slower than FP32 and not what was trained for. Train "
            "with activations on (--set qat.schedule.enable_activations_epoch=0) or export --target fp32"
        )


def export_metadata(model: nn.Module, checkpoint: Path, imgsz: ImageSize, quantization: Quantization) -> ModelMetadata:
    """What an exported file carries about itself (the runtime reads nothing else)."""
    return ModelMetadata(
        names=tuple(model.names[i] for i in sorted(model.names)),
        imgsz=input_size(imgsz),
        stride=int(max(model.stride)),
        quantization=quantization,
        source=str(checkpoint),
        source_sha256=file_sha256(checkpoint),
    )


def _check_target(model: nn.Module, target: str, checkpoint: Path) -> None:
    if target not in ONNX_TARGETS:
        raise ExportError(f"ONNX target {target!r}: write one of {', '.join(ONNX_TARGETS)}")
    if target == "fp32":
        return
    require_quantized(model, checkpoint)
    acts = _activation_schemes(model)
    if target == "tensorrt" and any(not (sym and signed) for sym, signed in acts):
        raise ExportError(
            f"{checkpoint} quantizes activations asymmetrically (uint8); TensorRT needs symmetric "
            "int8. Train with the tensorrt preset (configs/experiments/exp1_symmetric_quant.yaml)"
        )
    layout = getattr(model, "bienbao_layout", None)  # None: a checkpoint made before 0.7.0
    if layout is not None and layout != target:
        raise ExportError(
            f"{checkpoint} was calibrated or trained in the {layout} layout: export it with --target {layout}. Its "
            f"graph is that layout's whatever --target says (a {layout} graph labelled {target} runs slowly on "
            f"{target}'s runtime); for a {target} file, calibrate or train with a {target} policy"
        )
    if target == "onnxruntime" and any(signed for _, signed in acts):
        log.warning(
            "int8 (signed) activations in the onnxruntime layout: ONNX Runtime's x86 integer kernels are made "
            "for uint8 activations (measured on AVX2: signed ones slower than FP32); see the onnxruntime_cpu preset"
        )


def prepare_for_export(model: nn.Module, target: str) -> nn.Module:
    """The module that gets traced: BN folded, ranges frozen, Detect head in export mode."""
    model = copy.deepcopy(model).float().eval()
    if is_quantized(model):
        model = convert(model)
        if target == "fp32":
            enable_fake_quant(model, False)
    if target == "openvino":
        drop_restated_grids(model)  # OpenVINO carries grids through splits and pools itself
    model = model.fuse(verbose=False) if hasattr(model, "fuse") else model  # BN of float Conv blocks
    heads_for_export(model, native_dfl=target == "openvino")  # OpenVINO runs ultralytics' DFL fastest
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def export_onnx(
    checkpoint: str | Path,
    output_dir: str | Path,
    target: str = "onnxruntime",
    imgsz: ImageSize = 640,
    opset: int = 17,
    weight_bits: int | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``<output_dir>/<name>_<target>[_w<bits>].onnx`` with metadata
    (the ``_w<bits>`` suffix only where ``weight_bits`` changed the checkpoint's width)."""
    checkpoint, output_dir = check_request(checkpoint, output_dir, imgsz)
    model = load_detection_model(checkpoint)
    _check_target(model, target, checkpoint)
    before = describe_quantization(model, target).weight_bits
    apply_weight_bits(model, weight_bits, target)
    if target != "fp32":
        check_weight_widths(model, checkpoint)
    quantization = describe_quantization(model, target)
    traced = prepare_for_export(model, target)
    suffix = f"_w{quantization.weight_bits}" if weight_bits is not None and quantization.weight_bits != before else ""
    height, width = input_size(imgsz)
    suffix += f"_{height}x{width}" if height != width else ""
    path = check_writable(output_dir, "export") / f"{checkpoint.parent.name}_{checkpoint.stem}_{target}{suffix}.onnx"
    example = torch.zeros(1, 3, height, width)
    # written under a temporary name and renamed: a full disk never leaves a truncated .onnx behind
    with atomic_path(path) as traced_path, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer chatter
        torch.onnx.export(
            traced,
            (example,),
            str(traced_path),
            dynamo=False,
            opset_version=opset,
            input_names=["images"],
            output_names=["output0"],
            do_constant_folding=True,
        )
        graph = onnx.load(str(traced_path))
        fold_weight_quantizers(graph)
        metadata = export_metadata(model, checkpoint, imgsz, quantization)
        del graph.metadata_props[:]
        graph.metadata_props.add(key=METADATA_KEY, value=metadata.to_json())
        onnx.checker.check_model(graph)
        onnx.save(graph, str(traced_path))
    return ExportResult(path, metadata, qdq_report(graph))

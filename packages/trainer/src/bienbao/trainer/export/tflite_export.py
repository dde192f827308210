"""TFLite export through litert-torch (the optional ``tflite`` extra): INT8 with the checkpoint's
own scales, or FP32.

Each quantizer of the converted model is frozen into a ``quantized_decomposed`` quantize /
dequantize pair with its learned scale and zero point (the form PT2E graphs have), and the LiteRT
converter, in its static Q/DQ mode, folds those pairs into int8 kernels: nothing is re-calibrated.
TFLite's integer kernels take int8 activations, so a uint8 grid (the ``onnxruntime_cpu`` preset)
is written as the same grid in int8 codes (zero point - 128); weights keep their symmetric
per-channel codes (7-bit codes fit int8 as they are).

The Detect head's decoding (DFL, anchors, class sigmoid) has no quantizers, so it stays float and
the output is float32: box coordinates in pixels and class scores in [0, 1] never share one int8
scale, the trap that crushes the scores of fully-integer YOLO TFLite files. The input is int8 with
its own scale and zero point (those of the first conv's input quantizer); the runtime's LiteRT
backend quantizes the image with them. Metadata travels in a ``.json`` sidecar.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bienbao.core.files import atomic_path
from bienbao.quant import FakeQuantize, iter_quantizers
from bienbao.runtime.metadata import ModelMetadata, Quantization
from bienbao.trainer.export.onnx_export import (
    ExportError,
    ImageSize,
    apply_weight_bits,
    check_request,
    check_weight_widths,
    describe_quantization,
    export_metadata,
    input_size,
    prepare_for_export,
    require_quantized,
)
from bienbao.trainer.formats import PRECISIONS
from bienbao.trainer.ultralytics.models import load_detection_model

__all__ = ["TFLITE_TARGETS", "TFLiteExport", "export_tflite", "freeze_for_tflite"]

log = logging.getLogger("bienbao.trainer.export")
TFLITE_TARGETS = PRECISIONS  # a TFLite file is int8 (from either layout) or fp32
INSTALL = "pip install 'bienbao-trainer[tflite]' (litert-torch; about 2.8 GB with JAX), or run `nox -s tflite`"


class FrozenQDQ(FakeQuantize):
    """A converted quantizer as ``torch.export`` must see it: constants, no buffers, no branches
    on tensor flags. Set up by ``freeze_for_tflite``, never built directly."""

    _on: bool
    _bounds: tuple[int, int]
    _params: tuple

    def freeze(self) -> None:
        scheme = self.scheme
        self._on = bool(self.quantizing)
        if self._on:
            qmin, qmax = scheme.quant_min, scheme.quant_max
            zero_point = self.zero_point.detach().to(torch.int64).reshape(-1)
            if not scheme.signed:  # same grid, int8 codes
                qmin, qmax, zero_point = qmin - 128, qmax - 128, zero_point - 128
            if not (qmin >= -128 and qmax <= 127):
                raise ExportError(f"{scheme} codes do not fit int8: TFLite's integer kernels need 8 bits or fewer")
            self._bounds = (qmin, qmax)
            scale = self.scale.detach().float().reshape(-1)
            self._params = (
                (float(scale[0]), int(zero_point[0])) if scheme.axis is None else (scale.clone(), zero_point.clone())
            )
        # what torch.export would trace as inputs or mistype (uint8 flags): gone, the constants stay
        self._buffers.clear()
        self._parameters.clear()
        self._modules.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fake_quantize(x) if self._on else x

    def reapply(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def forward_shared(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.forward(t) for t in tensors]

    def _fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        ops = torch.ops.quantized_decomposed
        (qmin, qmax), (scale, zero_point) = self._bounds, self._params
        if self.scheme.axis is None:
            q = ops.quantize_per_tensor(x, scale, zero_point, qmin, qmax, torch.int8)
            return ops.dequantize_per_tensor(q, scale, zero_point, qmin, qmax, torch.int8)
        axis = self.scheme.axis
        q = ops.quantize_per_channel(x, scale, zero_point, axis, qmin, qmax, torch.int8)
        return ops.dequantize_per_channel(q, scale, zero_point, axis, qmin, qmax, torch.int8)


def freeze_for_tflite(model: nn.Module) -> nn.Module:
    """In place: every quantizer becomes a ``FrozenQDQ`` (objects kept, so shared references stay)."""
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers torch.ops.quantized_decomposed)

    for name, quantizer in iter_quantizers(model, roles=["weight"]):
        if quantizer.quantizing and (not quantizer.scheme.symmetric or quantizer.scheme.axis not in (None, 0)):
            raise ExportError(
                f"{name}: TFLite wants symmetric weights, per output channel; this checkpoint has {quantizer.scheme}"
            )
    for module in [m for m in model.modules() if isinstance(m, FakeQuantize)]:
        module.__class__ = FrozenQDQ
        module.freeze()
    return model


@dataclass(frozen=True)
class TFLiteExport:
    path: Path
    metadata: ModelMetadata

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _require_litert_torch():
    try:
        import litert_torch
    except ModuleNotFoundError as exc:
        raise ExportError(f"TFLite export needs litert-torch, which is not installed: {INSTALL}") from exc
    return litert_torch


def export_tflite(
    checkpoint: str | Path,
    output_dir: str | Path,
    target: str = "int8",
    imgsz: ImageSize = 640,
    weight_bits: int | None = None,
) -> TFLiteExport:
    """Export ``checkpoint`` to ``<output_dir>/<name>_<target>.tflite`` plus its ``.json`` metadata.
    Weights keep the checkpoint's width unless ``weight_bits`` says otherwise."""
    if target not in TFLITE_TARGETS:
        raise ExportError(f"TFLite target {target!r}: write one of {', '.join(TFLITE_TARGETS)}")
    checkpoint, output_dir = check_request(checkpoint, output_dir, imgsz)
    litert_torch = _require_litert_torch()
    model = load_detection_model(checkpoint)
    if target == "int8":
        require_quantized(model, checkpoint)
        apply_weight_bits(model, weight_bits, "tflite")
        check_weight_widths(model, checkpoint)
    described = describe_quantization(model, "fp32" if target == "fp32" else "onnxruntime")
    quantization = Quantization(
        "tflite",
        described.activations.replace("uint8 asymmetric", "int8 asymmetric"),
        described.weights,
        described.quantized_layers,
        described.float_layers,
        described.weight_bits,
    )
    traced = prepare_for_export(model, "fp32" if target == "fp32" else "tflite")
    quant_config = None
    if target == "int8":
        freeze_for_tflite(traced)
        from litert_torch.quantize import pt2e_quantizer
        from litert_torch.quantize import quant_config as qc

        # the PT2E quantizer is never run: passing one switches the converter to static Q/DQ
        # fusion, which folds *our* quantize/dequantize pairs into int8 kernels
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
        )
        quant_config = qc.QuantConfig(pt2e_quantizer=quantizer)
    output_dir.mkdir(parents=True, exist_ok=True)
    height, width = input_size(imgsz)
    rect = f"_{height}x{width}" if height != width else ""
    path = output_dir / f"{checkpoint.parent.name}_{checkpoint.stem}_{target}{rect}.tflite"
    log.info("converting to TFLite with litert-torch (a minute or two)")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        edge = litert_torch.convert(traced, (torch.zeros(1, 3, height, width),), quant_config=quant_config)
    with atomic_path(path) as tmp:  # a full disk never leaves a truncated .tflite behind
        edge.export(str(tmp))
    metadata = export_metadata(model, checkpoint, imgsz, quantization)
    metadata.write_sidecar(path)
    return TFLiteExport(path, metadata)

"""One export call for every format: ``export(spec) -> [Artifact]``, and ``EXPORTERS``, the table
of formats (``bienbao.trainer.formats.FORMATS``) -> the function that writes one.

An exporter takes the request and the artifacts already made in this call (an engine and an
OpenVINO IR are made from the ONNX file, so they name ``onnx`` in ``needs``). The command line and
the pipeline both call ``export``; a new format is one module plus one ``@exporter`` entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bienbao.runtime.backends import model_size_bytes
from bienbao.runtime.metadata import ModelMetadata
from bienbao.trainer.formats import FORMATS, check_combination
from bienbao.trainer.sizes import ImageSize

__all__ = ["EXPORTERS", "Artifact", "ExportSpec", "Exporter", "export"]


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the checkpoint, the output root (each format writes into its own folder
    under it), the layout or ``fp32`` (``target``), the input size and the format options."""

    checkpoint: Path
    output: Path
    formats: tuple[str, ...] = ("onnx",)
    target: str = "onnxruntime"
    imgsz: ImageSize = 640
    opset: int = 17
    weight_bits: int | None = None
    fp16: bool = True

    def check(self) -> None:
        check_combination(self.target, self.formats)


@dataclass(frozen=True)
class Artifact:
    format: str
    path: Path
    metadata: ModelMetadata
    summary: str  # one line for the command line: path, size, what is in it


@dataclass(frozen=True)
class Exporter:
    write: Callable[[ExportSpec, dict[str, Artifact]], Artifact]
    needs: tuple[str, ...] = ()  # formats made first, in the same call


EXPORTERS: dict[str, Exporter] = {}


def exporter(format_name: str, needs: tuple[str, ...] = ()):
    def register(write: Callable[[ExportSpec, dict[str, Artifact]], Artifact]):
        if format_name not in FORMATS:
            raise KeyError(f"{format_name} is not in bienbao.trainer.formats.FORMATS")
        EXPORTERS[format_name] = Exporter(write, needs)
        return write

    return register


def _size(path: Path) -> str:
    return f"{model_size_bytes(path) / 1e6:.2f} MB"


def _width(bits: int) -> str:
    return f"{bits}-bit" if bits else "float"


@exporter("onnx")
def _onnx(spec: ExportSpec, _made: dict[str, Artifact]) -> Artifact:
    from bienbao.trainer.export.onnx_export import export_onnx

    result = export_onnx(spec.checkpoint, spec.output / "onnx", spec.target, spec.imgsz, spec.opset, spec.weight_bits)
    report = result.report
    summary = (
        f"{result.path}  {_size(result.path)}  target={spec.target}  "
        f"weights: {_width(result.metadata.quantization.weight_bits)}  "
        f"int8 weights: {report.int8_weights}, float weights: {report.float_weights}, "
        f"Q/DQ: {report.ops.get('QuantizeLinear', 0)}/{report.ops.get('DequantizeLinear', 0)}"
    )
    return Artifact("onnx", result.path, result.metadata, summary)


@exporter("openvino", needs=("onnx",))
def _openvino(spec: ExportSpec, made: dict[str, Artifact]) -> Artifact:
    from bienbao.trainer.export.openvino_ir import export_openvino

    onnx = made["onnx"]
    xml = export_openvino(onnx.path, onnx.metadata, spec.output / "openvino")
    summary = f"{xml} (+ .bin)  {_size(xml)}  target={spec.target}  from {onnx.path.name}"
    return Artifact("openvino", xml, onnx.metadata, summary)


@exporter("tflite")
def _tflite(spec: ExportSpec, _made: dict[str, Artifact]) -> Artifact:
    from bienbao.trainer.export.tflite_export import export_tflite

    print("converting to TFLite with litert-torch (a minute or two at 640)")
    precision = "fp32" if spec.target == "fp32" else "int8"
    result = export_tflite(spec.checkpoint, spec.output / "tflite", precision, spec.imgsz, spec.weight_bits)
    summary = (
        f"{result.path}  {_size(result.path)}  activations: {result.metadata.quantization.activations}  "
        f"(metadata: {result.path.with_suffix('.json').name})"
    )
    return Artifact("tflite", result.path, result.metadata, summary)


@exporter("engine", needs=("onnx",))
def _engine(spec: ExportSpec, made: dict[str, Artifact]) -> Artifact:
    from bienbao.trainer.export.tensorrt_engine import build_engine, trtexec_command

    onnx = made["onnx"]
    engine = spec.output / "tensorrt" / onnx.path.with_suffix(".engine").name
    print(f"building the TensorRT engine (same as: {trtexec_command(onnx.path, engine, spec.fp16)})")
    built = build_engine(onnx.path, engine, fp16=spec.fp16)
    return Artifact("engine", Path(built), onnx.metadata, str(built))


def export(spec: ExportSpec) -> list[Artifact]:
    """Every format of ``spec``, each after the formats it needs (made once, even if not asked for)."""
    spec.check()
    made: dict[str, Artifact] = {}

    def make(format_name: str) -> None:
        if format_name in made:
            return
        entry = EXPORTERS[format_name]
        for needed in entry.needs:
            make(needed)
        made[format_name] = entry.write(spec, made)

    for format_name in spec.formats:
        make(format_name)
    return [made[f] for f in made]

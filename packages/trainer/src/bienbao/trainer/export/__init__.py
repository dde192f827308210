"""Export of FP32, PTQ and QAT checkpoints to deployable files with their own metadata."""

from bienbao.trainer.export.onnx_export import ExportError, ExportResult, export_onnx
from bienbao.trainer.export.qdq_graph import QDQReport, fold_weight_quantizers, qdq_report
from bienbao.trainer.export.registry import EXPORTERS, Artifact, ExportSpec, export
from bienbao.trainer.export.tflite_export import TFLiteExport, export_tflite

__all__ = [
    "EXPORTERS",
    "Artifact",
    "ExportError",
    "ExportResult",
    "ExportSpec",
    "QDQReport",
    "TFLiteExport",
    "export",
    "export_onnx",
    "export_tflite",
    "fold_weight_quantizers",
    "qdq_report",
]

"""Export of FP32, PTQ and QAT checkpoints to deployable files with their own metadata."""

from .onnx_export import ExportError, ExportResult, export_onnx
from .qdq_graph import QDQReport, fold_weight_quantizers, qdq_report

__all__ = ["ExportError", "ExportResult", "QDQReport", "export_onnx", "fold_weight_quantizers", "qdq_report"]

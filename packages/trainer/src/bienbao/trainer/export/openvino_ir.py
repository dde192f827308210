"""OpenVINO IR export: the checkpoint's own Q/DQ graph, read by OpenVINO's ONNX frontend (each
QuantizeLinear/DequantizeLinear pair becomes a FakeQuantize with the checkpoint's scale and zero
point) and saved as ``.xml`` + ``.bin``, weights kept in f32 (``compress_to_fp16=False``: the int8
weight codes and their scales stay exact). Nothing is re-calibrated. The bienbao metadata goes in
the model's ``rt_info`` under ``["framework", "bienbao"]``, where the runtime's OpenVINO backend
looks for it in ONNX files too.

The layout it runs fastest is ``openvino`` (one FakeQuantize per block output, after the SiLU:
``bienbao.trainer.ultralytics.qat_model``); the ``onnxruntime`` layout also runs, with the extra
requantizations ONNX Runtime's integer kernels need.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from bienbao.core.files import check_writable
from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata
from bienbao.trainer.export.onnx_export import ExportError

__all__ = ["export_openvino"]


def _require_openvino():
    try:
        import openvino
    except ModuleNotFoundError as exc:
        if exc.name != "openvino":
            raise
        raise ExportError("the OpenVINO export needs openvino: pip install 'bienbao-trainer[openvino]'") from None
    return openvino


def export_openvino(onnx: Path, metadata: ModelMetadata, output_dir: str | Path) -> Path:
    """``<output_dir>/<onnx file's stem>.xml`` (+ ``.bin``) from a bienbao ONNX file; both files
    are written under temporary names and renamed, the ``.xml`` last, so a reader never finds an
    ``.xml`` whose ``.bin`` is cut short."""
    ov = _require_openvino()
    folder = check_writable(Path(output_dir), "export")
    xml = folder / f"{onnx.stem}.xml"
    # the file's bytes, not its path: convert_model reads a path string with a comma as a list of models
    model = ov.convert_model(io.BytesIO(Path(onnx).read_bytes()))
    model.set_rt_info(metadata.to_json(), ["framework", METADATA_KEY])
    tmp = folder / f".{xml.stem}.{os.getpid()}.tmp.xml"
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
    return xml

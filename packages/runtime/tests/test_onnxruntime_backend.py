"""The ONNX Runtime backend's word on files laid out for another runtime (the weight-width plan
has its own tests in test_precision.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import pytest

from bienbao.runtime import Detector
from bienbao.runtime.metadata import METADATA_KEY

SHIPPED = Path(__file__).resolve().parents[3] / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"


@pytest.mark.parametrize("layout", ["tensorrt", "openvino"])
def test_onnx_runtime_says_when_a_file_is_laid_out_for_another_runtime(tmp_path, layout) -> None:
    """Those layouts have no QuantizeLinear after their convs, so ONNX Runtime fuses few integer convs."""
    graph = onnx.load(str(SHIPPED))
    prop = next(p for p in graph.metadata_props if p.key == METADATA_KEY)
    prop.value = prop.value.replace('"target": "onnxruntime"', f'"target": "{layout}"')
    onnx.save(graph, str(tmp_path / "other.onnx"))
    with pytest.warns(RuntimeWarning, match=f"{layout} layout .* QLinearConv"):
        Detector(tmp_path / "other.onnx")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Detector(SHIPPED)
    assert not [w for w in caught if "layout" in str(w.message)]

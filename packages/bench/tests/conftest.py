"""Fixtures: the sample's real frames and two small real ONNX models built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata, Quantization


@pytest.fixture(scope="session")
def frame_folder(sample_data) -> Path:
    return sample_data.parent / "valid/images"


def conv_detector(path: Path, channels: int, size: int = 160) -> Path:
    """A real (if untrained) detector-shaped model: stride-8 conv stack -> (1, 4 + 2, anchors)."""
    rng = np.random.default_rng(channels)
    w1 = rng.normal(0, 0.1, (channels, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (6, channels, 3, 3)).astype(np.float32)
    anchors = (size // 8) ** 2
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], strides=[4, 4], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s2"]),
        helper.make_node("Reshape", ["s2", "shape"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(np.array([1, 6, anchors], np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "det",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, anchors])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = ModelMetadata(names=("a", "b"), imgsz=(size, size), quantization=Quantization("fp32"))
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("models")
    return [conv_detector(folder / "small.onnx", 8), conv_detector(folder / "large.onnx", 64)]

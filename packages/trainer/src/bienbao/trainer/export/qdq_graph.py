"""Post-processing and inspection of exported Q/DQ ONNX graphs (onnx only, no torch).

torch's exporter writes every weight as a float initializer followed by QuantizeLinear. ONNX
Runtime and TensorRT both accept that, but the file stays FP32-sized. ``fold_weight_quantizers``
stores each such weight as its int8 codes (the QuantizeLinear computed once, here), so the
DequantizeLinear reads an int8 initializer: the file shrinks to about a quarter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["QDQReport", "constant_values", "fold_constants", "fold_weight_quantizers", "qdq_report"]

#: Elementwise ops torch's exporter leaves on constant weights (the clamp of narrow weight grids
#: becomes Max/Min; its constant folding does not cover them).
_NUMPY_OPS = {
    "Identity": lambda a: a,
    "Max": lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)),
    "Min": lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)),
    "Mul": np.multiply,
    "Add": np.add,
    "Sub": np.subtract,
    "Div": np.divide,
    "Neg": np.negative,
}


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every initializer and ``Constant`` node output, by tensor name."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def _quantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point)."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    info = np.iinfo(zero_point.dtype)
    codes = np.rint(values.astype(np.float32) / scale.astype(np.float32)) + zero_point.astype(np.int32)
    return np.clip(codes, info.min, info.max).astype(zero_point.dtype)


def fold_constants(model: onnx.ModelProto) -> int:
    """Evaluate the simple elementwise nodes whose inputs are all constants; returns how many."""
    graph = model.graph
    constants = constant_values(model)
    outputs = {o.name for o in graph.output}
    folded = 0
    for node in list(graph.node):
        op = _NUMPY_OPS.get(node.op_type)
        if op is None or not node.input or not all(t in constants for t in node.input) or node.output[0] in outputs:
            continue
        inputs = [constants[t] for t in node.input]
        value = np.asarray(op(*inputs)).astype(inputs[0].dtype)
        constants[node.output[0]] = value
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        graph.node.remove(node)
        folded += 1
    return folded


def fold_weight_quantizers(model: onnx.ModelProto) -> int:
    """Replace ``constant -> QuantizeLinear`` by an int8/uint8 initializer; returns how many.

    Constant elementwise chains in front (``fold_constants``) are evaluated first."""
    fold_constants(model)
    graph = model.graph
    constants = constant_values(model)
    initializers = {init.name: init for init in graph.initializer}
    folded = 0
    for node in list(graph.node):
        if node.op_type != "QuantizeLinear" or node.input[0] not in initializers:  # weights only
            continue
        if len(node.input) < 3 or node.input[1] not in constants or node.input[2] not in constants:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        codes = _quantize(constants[node.input[0]], constants[node.input[1]], constants[node.input[2]], axis)
        name = f"{node.input[0]}_quantized"
        graph.initializer.append(numpy_helper.from_array(codes, name))
        for consumer in graph.node:
            for index, tensor in enumerate(consumer.input):
                if tensor == node.output[0]:
                    consumer.input[index] = name
        graph.node.remove(node)
        folded += 1
    used = {tensor for node in graph.node for tensor in node.input}
    for init in list(graph.initializer):
        if init.name not in used and init.name not in {i.name for i in graph.input}:
            graph.initializer.remove(init)
    return folded


def _grid_source(producers: dict, tensor: str):
    """The node whose grid a tensor is on: through MaxPool/Resize (they keep values on the grid)."""
    node = producers.get(tensor)
    while node is not None and node.op_type in ("MaxPool", "Resize"):
        node = producers.get(node.input[0])
    return node


@dataclass(frozen=True)
class QDQReport:
    ops: dict[str, int]
    int8_weights: int  # convolution weights stored as 8-bit codes
    float_weights: int  # convolution weights stored as float
    quantized_conv_inputs: int
    concats: int
    concats_sharing_one_scale: int


def qdq_report(model: onnx.ModelProto) -> QDQReport:
    """What the graph quantizes: Q/DQ counts, int8 weights, Concat inputs on one grid."""
    graph = model.graph
    constants = constant_values(model)
    producers = {out: node for node in graph.node for out in node.output}
    int8_weights = float_weights = quantized_inputs = 0
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = producers.get(node.input[1])
        if (
            weight is not None
            and weight.op_type == "DequantizeLinear"
            and constants.get(weight.input[0], np.zeros(0, np.float32)).dtype in (np.int8, np.uint8)
        ):
            int8_weights += 1
        else:
            float_weights += 1
        source = producers.get(node.input[0])
        quantized_inputs += source is not None and source.op_type == "DequantizeLinear"
    concats = sharing = 0
    for node in graph.node:
        if node.op_type != "Concat":
            continue
        concats += 1
        sources = [_grid_source(producers, t) for t in node.input]
        if all(s is not None and s.op_type == "DequantizeLinear" for s in sources):
            scales = {float(np.asarray(constants[s.input[1]]).ravel()[0]) for s in sources}
            sharing += len(scales) == 1
    return QDQReport(
        dict(Counter(n.op_type for n in graph.node)), int8_weights, float_weights, quantized_inputs, concats, sharing
    )

"""Make an ultralytics YOLOv8 detection model QAT-ready with a ``bienbao.quant`` policy.

Every ``Conv`` block (conv + BN + SiLU) becomes one ``QATConvBn2d`` (BN keeps training and is
folded at export) with the quantizers the policy gives it. The rest depends on the target,
because the two runtimes fuse different graphs:

``tensorrt`` (explicit quantization, fusions across Add and Concat):
- residual adds (``Bottleneck``) quantize both operands on one shared grid;
- each concatenation quantizes all its inputs with one shared quantizer, so the engine
  concatenates without re-quantizing: in ``C2f`` and ``SPPF`` that quantizer *is* the input
  quantizer of the conv that consumes the concatenation (handed over, not duplicated), and in
  ``SPPF`` the grid is applied before the max-pools (pooling keeps values on the grid);
- the neck's ``Concat`` layers take over the input quantizer of the ``C2f`` they feed.

``onnxruntime`` (QLinearConv needs DequantizeLinear right before the conv and QuantizeLinear right
after it): the quantizer stays on the input of the conv after each concatenation, and adds and
concatenations run in float between integer convs. Each quantized conv's SiLU becomes
``QATSiLU``: the sigmoid's output and the product are quantized, so ONNX Runtime runs it as
QLinearSigmoid and QLinearMul instead of float; a conv whose input is exactly such a SiLU output
drops its own input quantizer (the value is already on that grid), so no requantization sits
between them.

Blocks are converted by swapping their class for a subclass that only changes ``forward`` and
adds quantizer children, so parameter names, and hence checkpoints, stay the ultralytics ones.
Which layers stay float (the Detect head's final convs and DFL by default) is the policy's call.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from ultralytics.nn.modules import SPPF, Bottleneck, C2f, Concat, Conv

from bienbao.quant import FakeQuantize, QuantPolicy, prepare_qat

from . import _compat  # noqa: F401  (torchvision NMS on CPU-only torch; ultralytics imports torchvision lazily)

__all__ = ["BLOCK_SWAPS", "TARGETS", "conv_bn_groups", "is_quantized", "prepare_yolo_qat"]

TARGETS = ("onnxruntime", "tensorrt")


def _shared(quantizer: FakeQuantize | None, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return tensors if quantizer is None else quantizer.forward_shared(tensors)


class QATConvBlock(Conv):
    """``Conv`` whose ``conv`` is a ``QATConvBn2d`` (BN inside it): act(conv(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class QATBottleneck(Bottleneck):
    add_input_quantizer: FakeQuantize | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        if not self.add:
            return y
        x, y = _shared(self.add_input_quantizer, [x, y])
        return x + y


class QATC2f(C2f):
    concat_input_quantizer: FakeQuantize | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(_shared(self.concat_input_quantizer, y), 1))


class QATSPPF(SPPF):
    concat_input_quantizer: FakeQuantize | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _shared(self.concat_input_quantizer, [self.cv1(x)])  # max-pooling keeps the grid
        y.extend(self.m(y[-1]) for _ in range(getattr(self, "n", 3)))
        y = self.cv2(torch.cat(y, 1))
        return y + x if getattr(self, "add", False) else y


class QATConcat(Concat):
    input_quantizer: FakeQuantize | None

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(_shared(self.input_quantizer, list(x)), self.d)


class QATSiLU(nn.Module):
    """``x * sigmoid(x)`` with the sigmoid's output and the product quantized (ONNX Runtime:
    QLinearSigmoid, QLinearMul). Its input is the conv output, already quantized by the conv."""

    def __init__(self, sigmoid_output_quantizer: FakeQuantize, output_quantizer: FakeQuantize) -> None:
        super().__init__()
        self.sigmoid_output_quantizer = sigmoid_output_quantizer
        self.output_quantizer = output_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_quantizer(x * self.sigmoid_output_quantizer(torch.sigmoid(x)))


#: ultralytics block type -> its QAT subclass (exact types).
BLOCK_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    Bottleneck: QATBottleneck,
    C2f: QATC2f,
    SPPF: QATSPPF,
    Concat: QATConcat,
}


def conv_bn_groups(model: nn.Module) -> list[list[str]]:
    """``[conv, bn]`` name pairs of every ultralytics ``Conv`` block with a BatchNorm."""
    return [
        [f"{name}.conv", f"{name}.bn"]
        for name, module in model.named_modules()
        if type(module) is Conv and isinstance(getattr(module, "bn", None), nn.BatchNorm2d)
    ]


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, FakeQuantize) for m in model.modules())


def prepare_yolo_qat(model: nn.Module, policy: QuantPolicy, target: str = "onnxruntime") -> nn.Module:
    """A QAT-ready deep copy of an ultralytics ``DetectionModel`` (see the module docstring)."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: write one of {', '.join(TARGETS)}")
    if is_quantized(model):
        raise ValueError("the model already holds quantizers: prepare_yolo_qat takes an FP32 model")
    model = copy.deepcopy(model)
    prepare_qat(model, policy, fuse=conv_bn_groups(model), inplace=True)
    for module in model.modules():
        if type(module) is Conv and isinstance(getattr(module, "bn", None), nn.Identity):
            del module.bn  # folded into the QATConvBn2d; ultralytics' fuse() skips blocks without bn
            module.__class__ = QATConvBlock
    _quantize_blocks(model, policy, shared=target == "tensorrt")
    if target == "tensorrt":
        _hand_over_concat_quantizers(model)
    else:
        _quantize_activations(model)
    return model


def _quantize_activations(model: nn.Module) -> None:
    """ONNX Runtime layout: quantized SiLUs, and no second quantizer on a conv fed by one."""
    for module in model.modules():
        config = getattr(getattr(module, "conv", None), "qconfig", None)
        if type(module) is QATConvBlock and isinstance(module.act, nn.SiLU) and config and config.output:
            module.act = QATSiLU(config.output.build(), config.output.build())
    silu_outputs: dict[int, torch.Tensor] = {}
    fed_by_silu: list[nn.Module] = []

    def record_output(_module, _inputs, output):
        silu_outputs[id(output)] = output  # kept alive, so ids stay unique during the trace

    def record_input(module, inputs):
        if id(inputs[0]) in silu_outputs:
            fed_by_silu.append(module)

    hooks = [m.register_forward_hook(record_output) for m in model.modules() if isinstance(m, QATSiLU)]
    hooks += [m.register_forward_pre_hook(record_input) for m in model.modules()
              if isinstance(getattr(m, "input_quantizer", None), FakeQuantize) and hasattr(m, "weight")]
    quantizers = [m for m in model.modules() if isinstance(m, FakeQuantize)]
    for quantizer in quantizers:  # trace the float graph: no ranges yet, nothing observed
        quantizer.enable_observer(False).enable_fake_quant(False)
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, 64, 64, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        for quantizer in quantizers:
            quantizer.enable_observer(True).enable_fake_quant(True)
        model.train(was_training)
    for conv in fed_by_silu:
        conv.input_quantizer = None


def _take_input_quantizer(conv_block: nn.Module) -> FakeQuantize | None:
    """Remove and return the input quantizer of a ``Conv`` block's conv (``None`` if float)."""
    conv = getattr(conv_block, "conv", None)
    quantizer = getattr(conv, "input_quantizer", None)
    if quantizer is not None:
        conv.input_quantizer = None
    return quantizer


def _quantize_blocks(model: nn.Module, policy: QuantPolicy, shared: bool) -> None:
    """Swap the blocks; with ``shared``, quantize Add and Concat inputs on shared grids."""
    for name, module in list(model.named_modules()):
        swap = BLOCK_SWAPS.get(type(module))
        if swap is None:
            continue
        module.__class__ = swap
        config = policy.resolve(name).input if shared else None
        if swap is QATBottleneck:
            module.add_input_quantizer = config.build() if config is not None and module.add else None
        elif swap in (QATC2f, QATSPPF):
            module.concat_input_quantizer = _take_input_quantizer(module.cv2) if shared else None
        else:  # QATConcat: its own from the policy, or taken over by _hand_over_concat_quantizers
            module.input_quantizer = config.build() if config is not None else None


def _consumers(layers: nn.Sequential | nn.ModuleList) -> dict[int, list[int]]:
    """Layer index -> indices of the layers that read its output (ultralytics' ``f`` fields)."""
    consumers: dict[int, list[int]] = {}
    for index, layer in enumerate(layers):
        sources = layer.f if isinstance(layer.f, list) else [layer.f]
        for source in sources:
            consumers.setdefault(index - 1 if source == -1 else source, []).append(index)
    return consumers


def _hand_over_concat_quantizers(model: nn.Module) -> None:
    """A neck Concat read only by a C2f quantizes with that C2f's first conv input quantizer."""
    layers = getattr(model, "model", None)
    if not isinstance(layers, (nn.Sequential, nn.ModuleList)):  # ultralytics keeps its layers in a Sequential
        return
    consumers = _consumers(layers)
    for index, layer in enumerate(layers):
        readers = consumers.get(index, [])
        if type(layer) is not QATConcat or len(readers) != 1 or not hasattr(layers[readers[0]], "cv1"):
            continue
        taken = _take_input_quantizer(layers[readers[0]].cv1)
        if taken is not None:
            layer.input_quantizer = taken

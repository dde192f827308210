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

``onnxruntime`` (ONNX Runtime fuses an op into its integer kernel when DequantizeLinear sits right
before it and QuantizeLinear right after it): every activation is quantized where it is
produced, once, and its consumers read it on that grid:
- each quantized conv's SiLU becomes ``QATSiLU`` (sigmoid output and product quantized:
  QLinearSigmoid, QLinearMul);
- residual adds and concatenations quantize their outputs (QLinearAdd, QLinearConcat);
- ops that move values without changing them (the ``C2f`` split, the ``SPPF`` max-pools, the
  neck's upsampling) re-state their input's grid with ``OnGrid``, so they run on the integers;
- a conv whose input already comes out of one of these quantizers drops its own input
  quantizer, so no requantization sits between them (found by tracing the model once);
- where the policy quantizes the Detect head's final convs, the box convs of the three levels
  share one output grid and the class convs another (``QATDetect``): the head concatenates the
  levels, and a converter that runs that concatenation on integers (LiteRT's does) would
  otherwise re-quantize every level onto the last level's grid and clip the box logits.

``openvino`` (OpenVINO runs a conv on integers when a FakeQuantize feeds it, and keeps its output
in float for the activation that follows): the ``onnxruntime`` layout without the requantizations
OpenVINO does not need, which is where NNCF puts its quantizers too:
- a conv block's output is quantized once, after its SiLU (``QuantizedActivation``), not before
  and inside it; a conv without an activation (the head's final box and class convs) keeps a float
  output;
- a ``C2f``'s concatenation inputs (its first conv's output halves, its bottlenecks' outputs),
  and an ``SPPF``'s (its first conv's output and its max-pools), are made on the concatenation's
  own grid (``SharedGrid``; NNCF's unified scales), so OpenVINO
  concatenates without requantizing each input; the grid is observed on the concatenated tensor;
- residual adds, other concatenations, pools and upsampling as in the ``onnxruntime`` layout;
  the re-statements of a grid (``OnGrid``) ONNX Runtime needs are left out of the export.

Blocks are converted by swapping their class for a subclass that only changes ``forward`` and
adds quantizer children, so parameter names, and hence checkpoints, stay the ultralytics ones.
Which layers stay float (the DFL by default; the head's final convs too in the TensorRT experiments
and in exp4_float_head) is the policy's call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from ultralytics.nn.modules import SPPF, Bottleneck, C2f, Concat, Conv, Detect

from bienbao.quant import FakeQuantize, LayerQConfig, QATConv2d, QuantPolicy, prepare_qat
from bienbao.trainer.formats import LAYOUTS

__all__ = [
    "BLOCK_SWAPS",
    "TARGETS",
    "OnGrid",
    "QATDetect",
    "QuantizedActivation",
    "SharedGrid",
    "conv_bn_groups",
    "drop_restated_grids",
    "is_quantized",
    "prepare_yolo_qat",
    "unified_concat",
]

TARGETS = tuple(LAYOUTS)  # the graph layouts (bienbao.trainer.formats)


class OnGrid(nn.Module):
    """Re-states another quantizer's grid on values already on it (``FakeQuantize.reapply``).

    Holds a reference, not a child: the quantizer's state stays with the module that owns it.
    """

    def __init__(self, quantizer: FakeQuantize) -> None:
        super().__init__()
        self._quantizer = (quantizer,)

    @property
    def quantizer(self) -> FakeQuantize:
        return self._quantizer[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.reapply(x)


class SharedGrid(OnGrid):
    """Quantizes a producer's output on another quantizer's grid, without observing it: in the
    ``openvino`` layout every input of a ``C2f`` or ``SPPF`` concatenation (the first conv's output,
    the bottlenecks' outputs) is made on the concatenation's grid, so OpenVINO concatenates without
    requantizing each input (NNCF's unified scales). The owner, the concatenation's output
    quantizer, observes the concatenated tensor, which covers every input's range. Unlike an
    ``OnGrid`` it changes values (they come off another grid), so an export keeps it."""


def _apply(module: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if module is None else module(x)


def _shared(quantizer: FakeQuantize | None, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return tensors if quantizer is None else quantizer.forward_shared(tensors)


class QATConvBlock(Conv):
    """``Conv`` whose ``conv`` is a ``QATConvBn2d`` (BN inside it): act(conv(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class _Slots:
    """Quantizer slots that a block's target leaves unset read as ``None`` (also in checkpoints
    saved before a slot existed). A class default would not do: it would hide the submodule."""

    SLOTS: tuple[str, ...] = ()

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in type(self).SLOTS:
                return None
            raise


class QATBottleneck(_Slots, Bottleneck):
    SLOTS = ("add_input_quantizer", "add_output_quantizer")  # tensorrt: both operands on one grid; onnxruntime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        if not self.add:
            return y
        x, y = _shared(self.add_input_quantizer, [x, y])
        return _apply(self.add_output_quantizer, x + y)


class QATC2f(_Slots, C2f):
    SLOTS = ("concat_input_quantizer", "split_grid", "concat_output_quantizer")  # tensorrt; onnxruntime x2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [_apply(self.split_grid, half) for half in self.cv1(x).chunk(2, 1)]
        y.extend(m(y[-1]) for m in self.m)
        y = torch.cat(_shared(self.concat_input_quantizer, y), 1)
        return self.cv2(_apply(self.concat_output_quantizer, y))


class QATSPPF(_Slots, SPPF):
    SLOTS = ("concat_input_quantizer", "pool_grid", "concat_output_quantizer")  # tensorrt; onnxruntime x2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _shared(self.concat_input_quantizer, [self.cv1(x)])  # max-pooling keeps the grid
        y.extend(_apply(self.pool_grid, self.m(y[-1])) for _ in range(getattr(self, "n", 3)))
        y = self.cv2(_apply(self.concat_output_quantizer, torch.cat(y, 1)))
        return y + x if getattr(self, "add", False) else y


class QATConcat(_Slots, Concat):
    SLOTS = ("input_quantizer", "output_quantizer")  # tensorrt; onnxruntime

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return _apply(self.output_quantizer, torch.cat(_shared(self.input_quantizer, list(x)), self.d))


class QATUpsample(_Slots, nn.Upsample):
    SLOTS = ("grid",)  # onnxruntime: its input's grid, set by tracing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _apply(self.grid, super().forward(x))


class QATDetect(_Slots, Detect):
    SLOTS = ("box_output_quantizer", "cls_output_quantizer")  # onnxruntime, when the final convs are quantized

    def forward_head(
        self, x: list[torch.Tensor], box_head: nn.Module | None = None, cls_head: nn.Module | None = None
    ) -> dict[str, torch.Tensor]:
        """ultralytics' ``forward_head``, with each output's levels quantized on one grid."""
        if box_head is None or cls_head is None:  # fused inference
            return {}
        bs = x[0].shape[0]
        boxes = [box_head[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)]
        scores = [cls_head[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)]
        return {
            "boxes": torch.cat(_shared(self.box_output_quantizer, boxes), dim=-1),
            "scores": torch.cat(_shared(self.cls_output_quantizer, scores), dim=-1),
            "feats": x,
        }


class QATSiLU(nn.Module):
    """``x * sigmoid(x)`` with the sigmoid's output and the product quantized (ONNX Runtime:
    QLinearSigmoid, QLinearMul). Its input is the conv output, already quantized by the conv."""

    def __init__(self, sigmoid_output_quantizer: FakeQuantize, output_quantizer: FakeQuantize) -> None:
        super().__init__()
        self.sigmoid_output_quantizer = sigmoid_output_quantizer
        self.output_quantizer = output_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_quantizer(x * self.sigmoid_output_quantizer(torch.sigmoid(x)))


class QuantizedActivation(nn.Module):
    """``output_quantizer(act(x))``: a conv block's activation with its output quantized (the
    ``openvino`` layout; the conv's own output stays float)."""

    def __init__(self, act: nn.Module, output_quantizer: FakeQuantize) -> None:
        super().__init__()
        self.act = act
        self.output_quantizer = output_quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_quantizer(self.act(x))


#: ultralytics block type -> its QAT subclass (exact types).
BLOCK_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    Bottleneck: QATBottleneck,
    C2f: QATC2f,
    SPPF: QATSPPF,
    Concat: QATConcat,
    nn.Upsample: QATUpsample,
    Detect: QATDetect,
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
    if target == "tensorrt":
        _quantize_blocks_shared(model, policy)
        _hand_over_concat_quantizers(model)
    else:
        if target == "openvino":
            _quantize_after_activations(model)
        else:
            _quantize_silus(model)
        _quantize_blocks(model, policy, target)
        if target == "openvino":
            _unify_concat_grids(model)
        _drop_requantization(model)
    model.bienbao_layout = target  # pickled with the model: export checks it against --target
    return model


def _swapped(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Swap every block in ``BLOCK_SWAPS`` for its QAT subclass; ``(name, block)`` of each."""
    blocks = []
    for name, module in list(model.named_modules()):
        swap = BLOCK_SWAPS.get(type(module))
        if swap is not None:
            module.__class__ = swap
            blocks.append((name, module))
    return blocks


def _take_input_quantizer(conv_block: nn.Module) -> FakeQuantize | None:
    """Remove and return the input quantizer of a ``Conv`` block's conv (``None`` if float)."""
    conv = getattr(conv_block, "conv", None)
    quantizer = getattr(conv, "input_quantizer", None)
    if quantizer is not None:
        conv.input_quantizer = None
    return quantizer


#: What each swapped block gets in a layout: ``(block, its policy config) -> None``, by QAT type.
#: A new block type needs an entry in each layout (a test walks ``BLOCK_SWAPS`` against them).
BlockHandler = Callable[[nn.Module, LayerQConfig], None]
BLOCK_HANDLERS: dict[str, dict[type[nn.Module], BlockHandler]] = {"tensorrt": {}, "onnxruntime": {}, "openvino": {}}


def _handles(layout: str, *types: type[nn.Module]) -> Callable[[BlockHandler], BlockHandler]:
    def register(handler: BlockHandler) -> BlockHandler:
        for block_type in types:
            BLOCK_HANDLERS[layout][block_type] = handler
        return handler

    return register


def _nothing(_block: nn.Module, _config: LayerQConfig) -> None:
    """The block needs nothing of its own in this layout (its convs carry the quantizers)."""


# -- TensorRT layout: Add and Concat inputs on shared grids ----------------------------------------
@_handles("tensorrt", QATBottleneck)
def _trt_bottleneck(block: nn.Module, config: LayerQConfig) -> None:
    block.add_input_quantizer = config.input.build() if config.input is not None and block.add else None


@_handles("tensorrt", QATC2f, QATSPPF)
def _trt_concat_block(block: nn.Module, _config: LayerQConfig) -> None:
    block.concat_input_quantizer = _take_input_quantizer(block.cv2)


@_handles("tensorrt", QATConcat)
def _trt_concat(block: nn.Module, config: LayerQConfig) -> None:  # its own from the policy, or handed over later
    block.input_quantizer = config.input.build() if config.input is not None else None


_handles("tensorrt", QATUpsample, QATDetect)(_nothing)


# -- ONNX Runtime layout: Add and Concat outputs, splits and pools on their input's grid ------------
def _output(config: LayerQConfig) -> FakeQuantize | None:
    return config.output.build() if config.output is not None else None


@_handles("onnxruntime", QATBottleneck)
@_handles("openvino", QATBottleneck)
def _ort_bottleneck(block: nn.Module, config: LayerQConfig) -> None:
    block.add_output_quantizer = _output(config) if block.add else None


@_handles("onnxruntime", QATC2f)
@_handles("openvino", QATC2f)
def _ort_c2f(block: nn.Module, config: LayerQConfig) -> None:
    block.split_grid, block.concat_output_quantizer = _output_grid(block.cv1), _output(config)


@_handles("onnxruntime", QATSPPF)
@_handles("openvino", QATSPPF)
def _ort_sppf(block: nn.Module, config: LayerQConfig) -> None:
    block.pool_grid, block.concat_output_quantizer = _output_grid(block.cv1), _output(config)


@_handles("onnxruntime", QATConcat)
@_handles("openvino", QATConcat)
def _ort_concat(block: nn.Module, config: LayerQConfig) -> None:
    block.output_quantizer = _output(config)


@_handles("onnxruntime", QATDetect)
def _ort_detect(block: nn.Module, _config: LayerQConfig) -> None:
    block.box_output_quantizer = _take_output_quantizers([branch[-1] for branch in block.cv2])
    block.cls_output_quantizer = _take_output_quantizers([branch[-1] for branch in block.cv3])


_handles("onnxruntime", QATUpsample)(_nothing)  # its grid is found by tracing (_drop_requantization)
# -- OpenVINO layout: the ONNX Runtime layout's blocks; the head's final convs keep float outputs ----
_handles("openvino", QATUpsample, QATDetect)(_nothing)


def _quantize_blocks(model: nn.Module, policy: QuantPolicy, layout: str) -> None:
    handlers = BLOCK_HANDLERS[layout]
    for name, block in _swapped(model):
        handlers[type(block)](block, policy.resolve(name))


def _quantize_blocks_shared(model: nn.Module, policy: QuantPolicy) -> None:
    """TensorRT layout: Add and Concat inputs quantized on shared grids."""
    _quantize_blocks(model, policy, "tensorrt")


def _quantize_silus(model: nn.Module) -> None:
    for module in model.modules():
        config = getattr(getattr(module, "conv", None), "qconfig", None)
        if type(module) is QATConvBlock and isinstance(module.act, nn.SiLU) and config and config.output:
            module.act = QATSiLU(config.output.build(), config.output.build())


def drop_restated_grids(model: nn.Module) -> int:
    """Remove every ``OnGrid`` and the output quantizer of a unified ``C2f`` concatenation (in
    place): the re-statements of a grid on values already on it,
    which ONNX Runtime needs to run splits, pools and upsampling on integers, and which OpenVINO
    runs as requantizations of their own (its low-precision transformations carry the grid through
    those ops unaided). The values are the same: on-grid values re-quantized to their grid do not
    move. Returns how many were removed."""
    removed = 0
    for module in model.modules():
        if unified_concat(module):  # every input already on its grid
            module.concat_output_quantizer = None
            removed += 1
        for name, child in list(module.named_children()):
            if type(child) is OnGrid:
                setattr(module, name, None)
                removed += 1
    return removed


def _unify_concat_grids(model: nn.Module) -> None:
    """OpenVINO layout: the inputs of each ``C2f`` and ``SPPF`` concatenation made on the
    concatenation's grid (``SharedGrid``), their own output quantizers dropped. (The SPPF's
    max-pools keep its first conv's grid, so that conv is its only producer.)"""
    for block in model.modules():
        shared = getattr(block, "concat_output_quantizer", None)
        if type(block) not in (QATC2f, QATSPPF) or not isinstance(shared, FakeQuantize):
            continue
        producers = [block.cv1.act]
        if type(block) is QATC2f:
            producers += [m if m.add else m.cv2.act for m in block.m]
        if not all(isinstance(getattr(p, _producer_slot(p), None), FakeQuantize) for p in producers):
            continue  # a float producer (a policy skip): leave this block as it is
        for producer in producers:
            setattr(producer, _producer_slot(producer), SharedGrid(shared))
        setattr(block, "split_grid" if type(block) is QATC2f else "pool_grid", OnGrid(shared))


def _producer_slot(producer: nn.Module) -> str:
    return "add_output_quantizer" if isinstance(producer, QATBottleneck) else "output_quantizer"


def unified_concat(block: nn.Module) -> bool:
    """True for a ``C2f`` or ``SPPF`` whose concatenation inputs all come on its own grid
    (``_unify_concat_grids``): its output quantizer then only re-states that grid."""
    shared = getattr(block, "concat_output_quantizer", None)
    act = getattr(getattr(block, "cv1", None), "act", None)
    return (
        type(block) in (QATC2f, QATSPPF)
        and isinstance(shared, FakeQuantize)
        and isinstance(getattr(act, "output_quantizer", None), SharedGrid)
        and act.output_quantizer.quantizer is shared
    )


def _quantize_after_activations(model: nn.Module) -> None:
    """OpenVINO layout: each conv's output quantizer moves after its activation; a conv with no
    activation after it (the head's final convs) keeps its output float."""
    for module in model.modules():
        conv = getattr(module, "conv", None)
        quantizer = getattr(conv, "output_quantizer", None)
        if type(module) is QATConvBlock and quantizer is not None:
            conv.output_quantizer = None
            module.act = QuantizedActivation(module.act, quantizer)
    for module in model.modules():
        if type(module) is QATConv2d:
            module.output_quantizer = None


def _output_grid(conv_block: nn.Module) -> OnGrid | None:
    act = getattr(conv_block, "act", None)
    return OnGrid(act.output_quantizer) if isinstance(act, (QATSiLU, QuantizedActivation)) else None


def _take_output_quantizers(convs: list[nn.Module]) -> FakeQuantize | None:
    """The first conv's output quantizer, taken from all of ``convs`` to serve them together
    (``None``, and nothing taken, unless every one of them has one)."""
    quantizers = [getattr(conv, "output_quantizer", None) for conv in convs]
    if any(q is None for q in quantizers):
        return None
    for conv in convs:
        conv.output_quantizer = None
    return quantizers[0]


def _drop_requantization(model: nn.Module) -> None:
    """Trace the float graph once: a conv reading a quantizer's output drops its input quantizer,
    and an upsampling of a quantizer's output re-states that grid."""
    grids: dict[int, tuple[FakeQuantize, torch.Tensor]] = {}  # tensor id -> (its grid, the tensor kept alive)
    fed: list[nn.Module] = []
    upsampled: list[tuple[QATUpsample, FakeQuantize]] = []

    def record(quantizer: FakeQuantize):
        def hook(_module, _inputs, output):
            grids[id(output)] = (quantizer, output)

        return hook

    def conv_input(module, inputs):
        if id(inputs[0]) in grids:
            fed.append(module)

    def upsample_input(module, inputs):
        if id(inputs[0]) in grids:
            upsampled.append((module, grids[id(inputs[0])][0]))

    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, FakeQuantize) and name.endswith("output_quantizer"):
            hooks.append(module.register_forward_hook(record(module)))
        elif isinstance(module, OnGrid):  # SharedGrid included
            hooks.append(module.register_forward_hook(record(module.quantizer)))
        elif isinstance(module, QATUpsample):
            hooks.append(module.register_forward_pre_hook(upsample_input))
        elif isinstance(getattr(module, "input_quantizer", None), FakeQuantize) and hasattr(module, "weight"):
            hooks.append(module.register_forward_pre_hook(conv_input))
    quantizers = [m for m in model.modules() if isinstance(m, FakeQuantize)]
    for quantizer in quantizers:  # no ranges yet: trace with nothing observed or quantized
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
    for conv in fed:
        conv.input_quantizer = None
    for upsample, quantizer in upsampled:
        upsample.grid = OnGrid(quantizer)


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

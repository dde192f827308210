"""The YOLOv8 QAT transform on the real FP32 checkpoint: where quantizers are, and where not."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from ultralytics.nn.tasks import load_checkpoint

from bienbao.quant import FakeQuantize, QATConvBn2d, Rule, calibrate, enable_fake_quant, iter_quantizers
from bienbao.trainer.config import load_policy
from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.ultralytics.qat_model import (
    QATConcat,
    QATDetect,
    QATSiLU,
    QuantizedActivation,
    prepare_yolo_qat,
)

POLICY = CONFIGS / "experiments/exp0_all_integer.yaml"  # onnxruntime target, every conv integer
DEFAULT_POLICY = CONFIGS / "quantization.yaml"  # the packaged one: model.0 and model.1 float
TRT_POLICY = CONFIGS / "experiments/exp1_symmetric_quant.yaml"
OV_POLICY = CONFIGS / "experiments/exp6_openvino.yaml"


@pytest.fixture(scope="module")
def fp32(fp32_weights) -> nn.Module:
    model, _ = load_checkpoint(fp32_weights)
    return model.eval()


@pytest.fixture(scope="module")
def qat(fp32) -> nn.Module:
    """The TensorRT layout (shared quantizers on Add and Concat inputs)."""
    model = prepare_yolo_qat(fp32, load_policy(TRT_POLICY), target="tensorrt").eval()
    calibrate(model, lambda m: m(torch.rand(2, 3, 128, 128)))
    return model


@pytest.fixture(scope="module")
def qat_ort(fp32) -> nn.Module:
    return prepare_yolo_qat(fp32, load_policy(POLICY), target="onnxruntime").eval()


def test_every_conv_is_quantized_except_what_the_policy_keeps_float(qat) -> None:
    float_convs = sorted(name for name, m in qat.named_modules() if type(m) is nn.Conv2d)
    assert float_convs == sorted([f"model.22.cv{b}.{i}.2" for b in (2, 3) for i in range(3)] + ["model.22.dfl.conv"])
    qat_convs = [m for m in qat.modules() if isinstance(m, QATConvBn2d)]
    assert len(qat_convs) == 57  # every Conv block of YOLOv8 but the float head convs
    assert all(m.weight_quantizer is not None for m in qat_convs)
    assert not any(
        isinstance(m, nn.BatchNorm2d) and not isinstance(p, QATConvBn2d) for p in qat.modules() for m in p.children()
    )  # every BN folded into its conv


def test_concat_inputs_share_one_quantizer(qat) -> None:
    layers = qat.model
    for index in (11, 14, 17, 20):  # neck Concat -> C2f: the C2f's first conv input moved onto the Concat
        assert isinstance(layers[index], QATConcat) and layers[index].input_quantizer is not None
        assert layers[index + 1].cv1.conv.input_quantizer is None
    for index in (2, 4, 6, 8, 9, 12, 15, 18, 21):  # C2f/SPPF: cv2's input quantizer quantizes the concat inputs
        assert layers[index].concat_input_quantizer is not None
        assert layers[index].cv2.conv.input_quantizer is None


def test_residual_adds_are_quantized_where_there_is_an_add(qat) -> None:
    backbone_block = qat.model[2].m[0]
    assert backbone_block.add and backbone_block.add_input_quantizer is not None
    neck_block = qat.model[12].m[0]  # C2f(shortcut=False) in the neck: no add, no quantizer
    assert not neck_block.add and neck_block.add_input_quantizer is None


def test_the_head_levels_share_one_grid_per_output(qat_ort, qat) -> None:
    """Box outputs of the three levels on one grid, class outputs on another (a converter that
    concatenates the levels on integers then has nothing to re-quantize); none in TensorRT's."""
    head = qat_ort.model[22]
    assert isinstance(head, QATDetect)
    assert head.box_output_quantizer is not None and head.cls_output_quantizer is not None
    assert head.box_output_quantizer is not head.cls_output_quantizer
    assert all(branch[-1].output_quantizer is None for branch in [*head.cv2, *head.cv3])
    assert all(branch[-1].weight_quantizer is not None for branch in [*head.cv2, *head.cv3])
    assert qat.model[22].box_output_quantizer is None  # exp1 keeps the final convs float


def test_the_onnxruntime_layout_quantizes_around_each_conv_and_its_silu(qat_ort) -> None:
    blocks = [m for m in qat_ort.modules() if isinstance(getattr(m, "conv", None), QATConvBn2d)]
    assert len(blocks) == 57
    assert all(isinstance(b.act, QATSiLU) for b in blocks)  # sigmoid and product quantized
    convs = [b.conv for b in blocks]
    assert all(c.output_quantizer is not None and not c.output_quantizer.scheme.signed for c in convs)
    # every conv but the first reads a value already quantized where it was made: a SiLU, a split
    # half, an add or a concat; no second quantizer on its input
    assert [c for c in convs if c.input_quantizer is not None] == [qat_ort.model[0].conv]  # the image itself
    assert all(getattr(m, "concat_input_quantizer", None) is None for m in qat_ort.modules())
    assert all(getattr(m, "add_input_quantizer", None) is None for m in qat_ort.modules())
    assert all(getattr(m, "input_quantizer", None) is None for m in qat_ort.model if isinstance(m, QATConcat))


def test_the_openvino_layout_quantizes_each_block_once_after_its_activation(fp32) -> None:
    """NNCF's placement: one uint8 quantizer per block output (after the SiLU), none on the conv's
    pre-activation output or inside the SiLU; the head's final convs keep float outputs; 8-bit weights."""
    model = prepare_yolo_qat(fp32, load_policy(OV_POLICY), target="openvino").eval()
    blocks = [m for m in model.modules() if isinstance(getattr(m, "conv", None), QATConvBn2d)]
    assert len(blocks) == 57
    assert all(isinstance(b.act, QuantizedActivation) and isinstance(b.act.act, nn.SiLU) for b in blocks)
    assert all(b.conv.output_quantizer is None for b in blocks)
    grids = [getattr(b.act.output_quantizer, "quantizer", b.act.output_quantizer) for b in blocks]  # own or shared
    assert all(isinstance(q, FakeQuantize) and not q.scheme.signed for q in grids)
    assert [b.conv for b in blocks if b.conv.input_quantizer is not None] == [model.model[0].conv]  # the image
    head = model.model[-1]
    finals = [branch[-1] for branch in (*head.cv2, *head.cv3)]
    assert all(conv.output_quantizer is None and conv.input_quantizer is None for conv in finals)
    assert head.box_output_quantizer is None and head.cls_output_quantizer is None
    weights = [q for _, q in iter_quantizers(model, roles=("weight",))]
    assert len(weights) == 63 and {q.scheme.bits for q in weights} == {8}
    adds = [m.add_output_quantizer for m in model.modules() if getattr(m, "add", False) and hasattr(m, "cv1")]
    assert adds and all(q is not None for q in adds)
    concats = [m.output_quantizer for m in model.model if isinstance(m, QATConcat)]
    assert len(concats) == 4 and all(q is not None for q in concats)


def test_the_openvino_layout_makes_every_c2f_concat_input_on_the_concat_grid(fp32) -> None:
    """NNCF's unified scales: the C2f's first conv and its bottlenecks quantize onto the
    concatenation's grid, which observes the concatenated tensor; its output quantizer is then an
    identity on calibrated data, which the export leaves out."""
    from bienbao.trainer.ultralytics.qat_model import QATC2f, SharedGrid, drop_restated_grids, unified_concat

    model = prepare_yolo_qat(fp32, load_policy(OV_POLICY), target="openvino").eval()
    sppf = model.model[9]
    assert unified_concat(sppf) and sppf.cv1.act.output_quantizer.quantizer is sppf.concat_output_quantizer
    blocks = [m for m in model.modules() if isinstance(m, QATC2f)]
    assert len(blocks) == 8 and all(unified_concat(b) for b in blocks)
    for block in blocks:
        shared = block.concat_output_quantizer
        producers = [block.cv1.act.output_quantizer]
        producers += [m.add_output_quantizer if m.add else m.cv2.act.output_quantizer for m in block.m]
        assert all(isinstance(q, SharedGrid) and q.quantizer is shared for q in producers)
    calibrate(model, lambda m: m(torch.rand(2, 3, 128, 128)))
    seen: list[bool] = []
    hooks = [
        b.concat_output_quantizer.register_forward_hook(lambda _m, i, o: seen.append(torch.equal(i[0], o)))
        for b in blocks
    ]
    with torch.no_grad():
        expected = model(torch.rand(1, 3, 128, 128))[0]
    for hook in hooks:
        hook.remove()
    assert seen == [True] * 8  # on its grid already: the re-statement changes nothing
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)[0]
        assert drop_restated_grids(model) == 9 + 8 + 1 + 2  # C2f/SPPF outputs, splits, pools, upsamplings
        assert torch.equal(model(x)[0], before) and expected.shape == before.shape


def test_the_packaged_policy_keeps_the_first_two_convs_float_and_quantizes_from_the_third(fp32) -> None:
    model = prepare_yolo_qat(fp32, load_policy(DEFAULT_POLICY), target="onnxruntime").eval()
    for index in (0, 1):  # plain Conv blocks: float conv, BN and SiLU
        block = model.model[index]
        assert type(block.conv) is nn.Conv2d and type(block.bn) is nn.BatchNorm2d and not isinstance(block.act, QATSiLU)
    blocks = [m for m in model.modules() if isinstance(getattr(m, "conv", None), QATConvBn2d)]
    assert len(blocks) == 57 - 2
    # the first quantized conv reads model.1's float output: it, and only it, quantizes its input
    assert [b.conv for b in blocks if b.conv.input_quantizer is not None] == [model.model[2].cv1.conv]
    assert all(b.conv.weight_quantizer.learnable for b in blocks)  # LSQ weight scales


def test_the_onnxruntime_layout_quantizes_add_and_concat_outputs_and_keeps_moves_on_grid(qat_ort) -> None:
    layers = qat_ort.model
    for index in (2, 4, 6, 8, 12, 15, 18, 21):  # C2f: halves on cv1's grid, concat quantized
        assert layers[index].split_grid.quantizer is layers[index].cv1.act.output_quantizer
        assert layers[index].concat_output_quantizer is not None
    assert layers[9].pool_grid.quantizer is layers[9].cv1.act.output_quantizer  # SPPF max-pools
    for index in (11, 14, 17, 20):  # neck Concats
        assert layers[index].output_quantizer is not None
    for index in (10, 13):  # upsampling re-states the grid of the layer it reads
        assert layers[index].grid.quantizer is layers[index - 1].cv2.act.output_quantizer
    assert layers[2].m[0].add_output_quantizer is not None  # backbone residual add
    assert layers[12].m[0].add_output_quantizer is None  # neck C2f: no shortcut, no add
    names = [name for name, _ in iter_quantizers(qat_ort)]  # references are not children: no duplicates
    assert len(names) == len(set(names)) and not any("grid" in name for name in names)


def test_the_layout_trace_leaves_train_mode_and_switches_alone(fp32) -> None:
    import copy

    model = prepare_yolo_qat(copy.deepcopy(fp32).train(), load_policy(POLICY), target="onnxruntime")
    assert model.training and all(m.training for m in model.modules())
    quantizers = list(iter_quantizers(model))
    assert all(q.observing and q.quantizing and not q.has_qparams for _, q in quantizers)


def test_an_unknown_target_is_refused(fp32) -> None:
    with pytest.raises(ValueError, match="onnxruntime, openvino, tensorrt"):
        prepare_yolo_qat(fp32, load_policy(POLICY), target="tflite")


def test_every_quantizer_has_a_range_after_calibration(qat) -> None:
    quantizers = list(iter_quantizers(qat))
    assert len(quantizers) == len({id(q) for _, q in quantizers}) > 100
    assert all(q.has_qparams for _, q in quantizers)


def test_with_quantizers_off_it_is_the_fp32_model(fp32, qat) -> None:
    x = torch.rand(1, 3, 128, 160)
    enable_fake_quant(qat, False)
    try:
        with torch.no_grad():
            expected, got = fp32(x)[0], qat(x)[0]
    finally:
        enable_fake_quant(qat, True)
    # BN folded into the conv weights: equal up to float32 rounding through 22 layers
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-2)


def test_the_first_conv_is_configurable(fp32) -> None:
    policy = load_policy(POLICY).with_rules(Rule("model.0.*", skip=True))
    model = prepare_yolo_qat(fp32, policy, target="tensorrt")
    assert type(model.model[0].conv) is nn.Conv2d and isinstance(model.model[0].bn, nn.BatchNorm2d)
    assert isinstance(model.model[1].conv, QATConvBn2d)


def test_prepared_model_pickles_like_an_ultralytics_checkpoint(qat) -> None:
    buffer = io.BytesIO()
    torch.save({"model": qat}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)["model"]
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], qat(x)[0])
    assert sum(isinstance(m, FakeQuantize) for m in loaded.modules()) == len(list(iter_quantizers(qat)))


def test_prepare_refuses_a_quantized_model(qat) -> None:
    with pytest.raises(ValueError, match="already holds quantizers"):
        prepare_yolo_qat(qat, load_policy(TRT_POLICY), target="tensorrt")


@pytest.mark.parametrize("target", ["onnxruntime", "openvino", "tensorrt"])
def test_an_activation_observer_reaches_every_activation_quantizer_of_the_layout(fp32, target) -> None:
    """exp2's histogram ranges: written once for "the activations", on every one the layout keeps
    (in the ONNX Runtime layout those are conv *outputs*; an ``input:`` setting reached 1 of them)."""
    from bienbao.quant import HistogramObserver, MinMaxObserver

    policy = load_policy(CONFIGS / "experiments/exp2_asymmetric_quant.yaml")
    model = prepare_yolo_qat(fp32, policy, target=target)
    activations = [q for _, q in iter_quantizers(model, roles=("input", "output"))]
    assert len(activations) > 50
    assert all(isinstance(q.observer, HistogramObserver) for q in activations)
    weights = [q for _, q in iter_quantizers(model, roles=("weight",))]
    assert weights and all(type(q.observer) is MinMaxObserver for q in weights)


def test_every_swapped_block_has_a_handler_in_every_layout() -> None:
    from bienbao.trainer.formats import LAYOUTS
    from bienbao.trainer.ultralytics.qat_model import BLOCK_HANDLERS, BLOCK_SWAPS

    assert set(BLOCK_HANDLERS) == set(LAYOUTS)
    for layout, handlers in BLOCK_HANDLERS.items():
        assert set(handlers) == set(BLOCK_SWAPS.values()), layout

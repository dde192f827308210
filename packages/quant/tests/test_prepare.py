"""prepare_qat -> calibrate -> convert on a small real network, with the summary and state."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.distributed as dist
from torch import nn

from bienbao.quant import (
    QATConv2d,
    QATConvBn2d,
    QATLinear,
    QuantizerNotReadyError,
    Rule,
    calibrate,
    convert,
    enable_observers,
    freeze_bn_stats,
    get_preset,
    iter_quantizers,
    policy_from_dict,
    prepare_qat,
    print_quant_summary,
    quant_summary,
)

FUSE = [["conv1", "bn1", "act1"]]


def run_all(batches):
    def forward_loop(model):
        for batch in batches:
            model(batch)

    return forward_loop


def test_prepare_swaps_layers_per_policy_and_leaves_the_original(small_net) -> None:
    policy = get_preset("onnxruntime_cpu").with_rules(Rule("head", skip=True))
    qat = prepare_qat(small_net, policy, fuse=FUSE)
    assert isinstance(qat.conv1, QATConvBn2d) and isinstance(qat.bn1, nn.Identity)
    assert isinstance(qat.conv2, QATConv2d)
    assert type(qat.head) is nn.Linear  # skipped by the rule
    assert type(small_net.conv1) is nn.Conv2d  # not inplace: the float model is untouched
    names = [name for name, _ in iter_quantizers(qat)]
    assert names == [
        "conv1.input_quantizer",
        "conv1.weight_quantizer",
        "conv1.output_quantizer",
        "conv2.input_quantizer",
        "conv2.weight_quantizer",
        "conv2.output_quantizer",
    ]


def test_prepare_refuses_a_prepared_model_and_a_non_policy(small_net) -> None:
    qat = prepare_qat(small_net, get_preset("tensorrt"))
    with pytest.raises(ValueError, match="already holds QAT modules"):
        prepare_qat(qat, get_preset("tensorrt"))
    with pytest.raises(TypeError, match="get_preset"):
        prepare_qat(small_net, "tensorrt")  # type: ignore[arg-type]


def test_calibrate_sets_every_range_from_the_data(small_net, batches) -> None:
    policy = policy_from_dict({"preset": "onnxruntime_cpu", "default": {"input": {"observer": "minmax"}}})
    qat = prepare_qat(small_net, policy, fuse=FUSE)
    calibrate(qat, run_all(batches))
    for _, quantizer in iter_quantizers(qat):
        assert quantizer.has_qparams and quantizer.quantizing and not quantizer.observing
    # the first layer sees the raw batches: its range is their min and max, widened to zero
    data = torch.cat([b.flatten() for b in batches])
    scheme = qat.conv1.input_quantizer.scheme
    scale, zero_point = scheme.qparams(data.min(), data.max())
    assert torch.equal(qat.conv1.input_quantizer.scale, scale)
    assert torch.equal(qat.conv1.input_quantizer.zero_point, zero_point)
    weight = qat.conv2.weight_quantizer
    expected_scale, _ = weight.scheme.qparams(*torch.aminmax(qat.conv2.weight.detach().flatten(1), dim=1))
    assert torch.equal(weight.scale, expected_scale)


def test_calibrate_complains_when_the_loop_runs_nothing(small_net) -> None:
    qat = prepare_qat(small_net, get_preset("tensorrt"))
    with pytest.raises(QuantizerNotReadyError, match="saw no data"):
        calibrate(qat, lambda model: None)
    with pytest.raises(ValueError, match="prepare_qat first"):
        calibrate(small_net, run_all([]))


def test_convert_folds_bn_freezes_ranges_and_keeps_the_eval_output(small_net, batches) -> None:
    qat = prepare_qat(small_net, get_preset("onnxruntime_cpu"), fuse=FUSE)
    calibrate(qat, run_all(batches))
    qat.train()
    enable_observers(qat)
    qat(batches[0])  # a training step moves BN statistics and ranges
    freeze_bn_stats(qat)
    exported = convert(qat)
    assert isinstance(exported.conv1, QATConv2d) and not exported.training
    assert all(not q.observing for _, q in iter_quantizers(exported))
    enable_observers(qat, False)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(exported(x), qat.eval()(x), rtol=0, atol=1e-5)


def test_convert_refuses_an_uncalibrated_model(small_net) -> None:
    with pytest.raises(QuantizerNotReadyError, match="calibrate first"):
        convert(prepare_qat(small_net, get_preset("tensorrt")))


def test_summary_shows_what_the_policy_did(small_net, batches) -> None:
    policy = get_preset("tensorrt").with_rules(Rule("head", skip=True))
    qat = prepare_qat(small_net, policy, fuse=FUSE)
    calibrate(qat, run_all(batches))
    out = io.StringIO()
    rows = print_quant_summary(qat, file=out)
    assert [r.name for r in rows] == ["conv1", "conv2", "head"]
    assert rows[2].input == rows[2].weight == "float" and not rows[2].quantized
    assert rows[0].input.startswith("int8 sym per-tensor") and "[-Q]" in rows[0].input
    text = out.getvalue()
    assert "2 quantized layer(s), 1 left float" in text and "head" in text
    assert quant_summary(qat) == rows


def test_prepared_model_state_roundtrips(small_net, batches) -> None:
    qat = prepare_qat(small_net, get_preset("onnxruntime_cpu"), fuse=FUSE)
    calibrate(qat, run_all(batches))
    buffer = io.BytesIO()
    torch.save(qat.state_dict(), buffer)
    buffer.seek(0)
    fresh = prepare_qat(small_net, get_preset("onnxruntime_cpu"), fuse=FUSE)  # no ranges yet
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 3, 16, 16)
    qat.eval(), fresh.eval()
    assert torch.equal(fresh(x), qat(x))
    assert torch.equal(copy.deepcopy(qat)(x), qat(x))


def test_ddp_broadcasts_quantizer_state(small_net, batches, tmp_path) -> None:
    """One-process gloo group: DDP wraps the prepared model and broadcasts its buffers."""
    qat = prepare_qat(small_net, get_preset("onnxruntime_cpu"), fuse=FUSE)
    calibrate(qat, run_all(batches))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(qat.train())
        enable_observers(qat)
        ddp(batches[0]).sum().backward()
        assert qat.conv2.weight.grad is not None
        assert all(q.has_qparams for _, q in iter_quantizers(qat))
    finally:
        dist.destroy_process_group()


def test_all_three_module_kinds_are_swapped() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.Flatten(), nn.Linear(4, 2))
    qat = prepare_qat(model, get_preset("weight_only"), fuse=[["0", "1"]])
    assert [type(m) for m in qat] == [QATConvBn2d, nn.Identity, QATConv2d, nn.Flatten, QATLinear]

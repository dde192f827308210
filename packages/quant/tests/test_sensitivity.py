"""Sensitivity analysis ranks a deliberately fragile layer first and builds rules from it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bienbao.quant import (
    PerChannel,
    QuantizerConfig,
    QuantScheme,
    Rule,
    calibrate,
    get_preset,
    iter_quantizers,
    prepare_qat,
    sensitivity_analysis,
    with_critical_layers,
)


def build(policy):
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)
    ).eval()
    data = [torch.randn(2, 3, 12, 12) for _ in range(3)]
    reference = [model(x).detach() for x in data]
    qat = prepare_qat(model, policy)
    calibrate(qat, lambda m: [m(x) for x in data])

    def evaluate(m) -> float:  # higher is better: negative output error against float
        with torch.no_grad():
            return -sum((m(x) - ref).pow(2).mean().item() for x, ref in zip(data, reference, strict=False))

    return qat, evaluate


TWO_BIT = QuantizerConfig(QuantScheme(2, granularity=PerChannel(0)))
FRAGILE = get_preset("onnxruntime_cpu").with_rules(Rule("2", weight=TWO_BIT))


def test_the_two_bit_layer_is_ranked_most_sensitive_both_ways() -> None:
    qat, evaluate = build(FRAGILE)
    switches = [(q.observing, q.quantizing) for _, q in iter_quantizers(qat)]
    report = sensitivity_analysis(qat, evaluate)
    assert report.float_metric == 0.0  # nothing quantized: the float outputs exactly
    assert report.quantized_metric < 0.0
    assert report.ranking()[0].name == "2"
    assert report.ranking("gain_when_float")[0].name == "2"
    assert {layer.name for layer in report.layers} == {"0", "2", "4"}
    assert [(q.observing, q.quantizing) for _, q in iter_quantizers(qat)] == switches  # restored
    assert report.to_dict()["layers"][0]["name"] == "2"


def test_critical_rules_make_a_policy_that_recovers_accuracy() -> None:
    qat, evaluate = build(FRAGILE)
    report = sensitivity_analysis(qat, evaluate)
    rules = report.critical_rules(top_k=1)
    assert rules == (Rule("2", skip=True),)
    improved, evaluate_improved = build(with_critical_layers(FRAGILE, report, top_k=1))
    assert type(improved[2]) is nn.Conv2d
    assert evaluate_improved(improved) > report.quantized_metric

    sixteen = QuantizerConfig(QuantScheme(16, granularity=PerChannel(0)))
    higher = report.critical_rules(top_k=1, keep=sixteen)
    assert higher == (Rule("2", weight=sixteen),)


def test_bad_arguments_are_named() -> None:
    qat, evaluate = build(FRAGILE)
    with pytest.raises(ValueError, match="not QAT layers"):
        sensitivity_analysis(qat, evaluate, layers=["7"])
    report = sensitivity_analysis(qat, evaluate, layers=["0"])
    with pytest.raises(ValueError, match="drop_when_quantized or gain_when_float"):
        report.ranking("speed")
    with pytest.raises(ValueError, match="'float' or a QuantizerConfig"):
        report.critical_rules(1, keep="int16")


def test_rank_by_output_error_finds_the_layer_whose_error_reaches_the_output() -> None:
    """Two convs in a row: the first with a wide, heavy-tailed output range on a coarse 4-bit grid,
    the second on a fine one. The first ranks critical; the switches come back as they were."""
    from bienbao.quant import (
        LayerQConfig,
        QuantizerConfig,
        QuantPolicy,
        QuantScheme,
        calibrate,
        critical_rules,
        iter_quantizers,
        prepare_qat,
        rank_by_output_error,
    )

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    coarse = QuantizerConfig(QuantScheme(4, granularity=PerChannel(0)))
    fine = QuantizerConfig(QuantScheme(8, granularity=PerChannel(0)))
    policy = QuantPolicy(LayerQConfig(weight=fine), rules=(Rule("0", weight=coarse),))
    qat = prepare_qat(model, policy)
    inputs = [torch.randn(2, 3, 16, 16) for _ in range(3)]
    calibrate(qat, lambda m: [m(x) for x in inputs])
    before = [(q.observing, q.quantizing) for _, q in iter_quantizers(qat)]
    ranking = rank_by_output_error(qat, inputs)
    assert [layer.name for layer in ranking.layers] == ["0", "2"]
    assert ranking.layers[0].sqnr_db < ranking.layers[1].sqnr_db - 6
    assert ranking.separated(1) and "critical #1 of 2" in ranking.reason("0")
    assert [(q.observing, q.quantizing) for _, q in iter_quantizers(qat)] == before
    assert critical_rules(ranking, 1) == (Rule("0", skip=True),)


def test_ties_at_the_cut_are_reported() -> None:
    from bienbao.quant import LayerSensitivity, SensitivityReport

    separated = SensitivityReport(
        0.5, 0.4, (LayerSensitivity("a", 0.3, 0.5), LayerSensitivity("b", 0.45, 0.42), LayerSensitivity("c", 0.5, 0.4))
    )
    assert separated.ties_at(1) == []  # a drops 0.2, b 0.05, c 0.0: clear
    tied = SensitivityReport(
        0.5, 0.4, (LayerSensitivity("a", 0.5, 0.4), LayerSensitivity("b", 0.5, 0.4), LayerSensitivity("c", 0.45, 0.42))
    )
    # c drops 0.05, a and b nothing: c is clearly first, but the second place is a coin toss
    assert tied.ties_at(1) == []
    assert sorted(tied.ties_at(2)) == ["a", "b"]

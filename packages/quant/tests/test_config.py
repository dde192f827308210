"""Configs: presets, rule precedence, validation, and reading a policy from plain data."""

from __future__ import annotations

import copy

import pytest

from bienbao.quant import (
    PRESETS,
    ConfigError,
    LayerQConfig,
    ObserverSpec,
    PerChannel,
    PerTensor,
    QuantizerConfig,
    QuantPolicy,
    QuantScheme,
    Rule,
    get_preset,
    policy_from_dict,
)


def test_presets_are_the_documented_targets() -> None:
    ort = get_preset("onnxruntime_cpu").default
    # 7-bit weight codes: ONNX Runtime's AVX2 u8s8 kernels saturate with full 8-bit weights
    assert ort.weight.scheme == QuantScheme(7, symmetric=True, signed=True, granularity=PerChannel(0))
    assert ort.input.scheme == QuantScheme(8, symmetric=False, signed=False, granularity=PerTensor())
    trt = get_preset("tensorrt").default
    assert trt.input.scheme == QuantScheme(8, symmetric=True, signed=True, granularity=PerTensor())
    assert trt.weight.scheme.per_channel
    # OpenVINO: exact int8 products (VNNI, AMX, ARM dot product), so all 8 bits; uint8 activations
    ov = get_preset("openvino_cpu").default
    assert ov.weight.scheme == QuantScheme(8, symmetric=True, signed=True, granularity=PerChannel(0))
    assert ov.output.scheme == ov.input.scheme == QuantScheme(8, symmetric=False, signed=False, granularity=PerTensor())
    weight_only = get_preset("weight_only").default
    assert weight_only.input is None and weight_only.weight is not None
    assert set(PRESETS) == {"onnxruntime_cpu", "openvino_cpu", "tensorrt", "weight_only"}


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="onnxruntime_cpu, openvino_cpu, tensorrt, weight_only"):
        get_preset("tflite")


def test_later_rules_override_earlier_ones_field_by_field() -> None:
    four_bit = QuantizerConfig(QuantScheme(4, granularity=PerChannel(0)))
    base = get_preset("onnxruntime_cpu")
    policy = base.with_rules(
        Rule("model.*", weight=four_bit),  # general
        Rule("model.22.*", skip=True),  # more specific, later: wins
        Rule("model.22.cv3.*", input=base.default.input),  # later still: re-enables the input only
    )
    assert policy.resolve("model.3.conv").weight == four_bit
    assert policy.resolve("model.3.conv").input == base.default.input  # untouched field kept
    assert policy.resolve("model.22.cv2.0.conv").is_float
    partly = policy.resolve("model.22.cv3.0.conv")
    assert partly.input == base.default.input and partly.weight is None
    assert policy.resolve("other") == base.default


def test_a_rule_matching_no_layer_is_an_error_or_a_warning() -> None:
    policy = get_preset("tensorrt").with_rules(Rule("model.99.*", skip=True))
    with pytest.raises(ConfigError, match="model.99"):
        policy.resolve_all(["model.0.conv", "model.1.conv"])
    lenient = QuantPolicy(policy.default, policy.rules, on_unmatched="warn")
    with pytest.warns(UserWarning, match="model.99"):
        plan = lenient.resolve_all(["model.0.conv"])
    assert plan["model.0.conv"] == policy.default


def test_rules_and_layer_configs_validate_themselves() -> None:
    with pytest.raises(ConfigError, match="does nothing"):
        Rule("model.0.*")
    with pytest.raises(ConfigError, match="skip and also sets weight"):
        Rule("model.0.*", skip=True, weight=None)
    with pytest.raises(ConfigError, match="activations are quantized to 8 bits"):
        LayerQConfig(input=QuantizerConfig(QuantScheme(4)))
    with pytest.raises(ConfigError, match="axis 0"):
        LayerQConfig(weight=QuantizerConfig(QuantScheme(8, granularity=PerChannel(1))))
    with pytest.raises(ConfigError, match="minmax, moving_average"):
        ObserverSpec("kl")
    with pytest.raises(ConfigError, match="bad option"):
        ObserverSpec("minmax", {"averaging_constant": 0.1})


def test_configs_are_frozen_and_deep_copyable() -> None:
    spec = ObserverSpec("histogram", {"method": "mse", "bins": 512})
    with pytest.raises(AttributeError):
        spec.name = "minmax"  # type: ignore[misc]
    assert copy.deepcopy(spec) == spec and hash(spec) == hash(copy.deepcopy(spec))
    assert dict(spec.options) == {"method": "mse", "bins": 512}


def test_policy_from_dict_reads_preset_default_and_rules() -> None:
    policy = policy_from_dict(
        {
            "preset": "onnxruntime_cpu",
            "default": {"input": {"observer": {"name": "histogram", "method": "mse"}}},
            "rules": [
                {"pattern": "model.22.*", "skip": True},
                {"pattern": "model.0.*", "weight": {"bits": 6}},
            ],
        },
        source="quantization.yaml",
    )
    default = policy.default
    assert default.input.observer == ObserverSpec("histogram", {"method": "mse"})
    assert default.input.scheme.signed is False  # unnamed keys kept from the preset
    first = policy.resolve("model.0.conv")
    assert first.weight.scheme == QuantScheme(6, granularity=PerChannel(0))
    assert default.weight.scheme.bits == 7
    assert policy.resolve("model.22.dfl.conv").is_float


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"preset": "onnxruntime_cpu", "rulez": []}, "unknown key.*rulez"),
        ({"preset": "onnxruntime_cpu", "rules": [{"pattern": "a", "wieght": {}}]}, r"wieght in rules\[0\]"),
        ({"preset": "nope"}, "preset.*onnxruntime_cpu"),
        ({"preset": "tensorrt", "rules": [{"pattern": "a", "weight": {"bits": 1}}]}, r"rules\[0\]\.weight.*2 to 16"),
        ({"preset": "tensorrt", "default": {"input": {"granularity": "per_row"}}}, "per_tensor or per_channel"),
        ({"preset": "tensorrt", "default": {"input": {"axis": 1}}}, "axis is only meaningful"),
        ({"preset": "tensorrt", "rules": [{"skip": True}]}, "needs a pattern"),
        ({"rules": []}, "give a preset"),
    ],
)
def test_policy_from_dict_names_the_file_and_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        policy_from_dict(data, source="configs/quantization.yaml")
    assert str(info.value).startswith("configs/quantization.yaml")

"""``activations``: one setting for every activation role a layer quantizes."""

from __future__ import annotations

from bienbao.quant.config_io import policy_from_dict


def test_activations_sets_every_activation_role_the_layer_quantizes() -> None:
    policy = policy_from_dict(
        {
            "preset": "onnxruntime_cpu",
            "default": {"activations": {"observer": {"name": "histogram", "method": "mse"}, "learnable": True}},
            "rules": [
                {"pattern": "head.*", "activations": None},
                {"pattern": "neck.*", "activations": {"observer": "minmax"}, "output": {"observer": "moving_average"}},
            ],
        }
    )
    default = policy.default
    for role in ("input", "output"):
        config = getattr(default, role)
        assert config.observer.name == "histogram" and config.learnable
        assert not config.scheme.symmetric  # the rest from the preset's uint8 activations
    assert default.weight.observer.name == "minmax" and not default.weight.learnable  # weights untouched
    assert policy.resolve("head.conv").input is None and policy.resolve("head.conv").output is None
    neck = policy.resolve("neck.conv")
    assert neck.input.observer.name == "minmax"
    assert neck.output.observer.name == "moving_average"  # a named role applies after it
    assert neck.output.learnable  # and over it: the rest still from the default's activations
    # a float role stays float: TensorRT's preset has no output quantizers
    trt = policy_from_dict({"preset": "tensorrt", "default": {"activations": {"observer": "minmax"}}})
    assert trt.default.output is None and trt.default.input.observer.name == "minmax"

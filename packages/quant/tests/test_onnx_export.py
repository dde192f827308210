"""A prepared, calibrated model exports to QuantizeLinear/DequantizeLinear and ONNX Runtime
reproduces the fake-quant PyTorch output within a tolerance derived from the quantization step."""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bienbao.quant import PerChannel, QuantizerConfig, QuantScheme, Rule, calibrate, convert, get_preset, prepare_qat

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def u8s8_saturates() -> bool:
    """x86 without VNNI: ONNX Runtime's u8s8 kernels add product pairs in int16 with saturation
    (bienbao.runtime.precision has the product's own check; quant does not depend on it)."""
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        return False
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
    return not any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.conv3(torch.nn.functional.silu(self.conv2(x)))


def export(model: nn.Module, x: torch.Tensor, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's tracer/deprecation chatter
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17, input_names=["images"], output_names=["out"]
        )


def build(preset: str, weight: QuantizerConfig | None = None) -> nn.Module:
    """Calibrated export form of ``Net`` with the last conv's output quantized too (a grid to
    compare on) and optionally another weight quantizer everywhere."""
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn1.running_mean.uniform_(-0.2, 0.2)
        net.bn1.running_var.uniform_(0.5, 1.5)
    policy = get_preset(preset).with_rules(Rule("conv3", output=get_preset(preset).default.input))
    if weight is not None:
        policy = policy.with_rules(Rule("*", weight=weight))
    qat = prepare_qat(net.eval(), policy, fuse=[["conv1", "bn1"]])
    data = [torch.randn(2, 3, 32, 32) for _ in range(4)]
    calibrate(qat, lambda m: [m(x) for x in data])
    return convert(qat)


def run_onnx(path, x: torch.Tensor, optimize: bool) -> np.ndarray:
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x.numpy()})[0]


def steps_off(model: nn.Module, path, x: torch.Tensor, optimize: bool) -> np.ndarray:
    """|ONNX Runtime - fake quant| in units of the output quantization step."""
    with torch.no_grad():
        expected = model(x).numpy()
    step = model.conv3.output_quantizer.scale.item()
    diff = np.abs(run_onnx(path, x, optimize) - expected) / step
    assert np.allclose(diff, np.round(diff), atol=1e-3)  # both sides sit on the output grid
    return np.round(diff)


@pytest.mark.parametrize("preset", ["onnxruntime_cpu", "tensorrt"])
def test_onnx_runtime_matches_fake_quant_within_one_output_step(preset: str, tmp_path) -> None:
    model = build(preset)
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "model.onnx"
    export(model, x, path)

    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    outputs = 3 if preset == "onnxruntime_cpu" else 1  # ORT's preset quantizes every conv's output
    assert ops.count("QuantizeLinear") == ops.count("DequantizeLinear") == 3 + 3 + outputs  # inputs, weights
    assert "BatchNormalization" not in ops  # folded

    # The reference kernels (no graph optimisation) compute exactly what fake quant does.
    assert steps_off(model, path, x, optimize=False).max() == 0
    # Fused integer kernels (QLinearConv: int32 bias, fixed-point requantisation) may flip a
    # rounding tie: never by more than one step, and for the great majority of outputs not at all.
    if preset == "tensorrt" and u8s8_saturates():
        pytest.skip(
            "the tensorrt preset's full 8-bit weights saturate ONNX Runtime's u8s8 kernels on x86 without "
            "VNNI (how far depends on the calibrated ranges), and its exact-kernel option "
            "(session.x64quantprecision) rejects int8-activation graphs: the fused check runs on VNNI/ARM CPUs"
        )
    optimized = steps_off(model, path, x, optimize=True)
    assert optimized.max() <= 1
    assert (optimized == 0).mean() >= 0.95


def test_narrow_weights_export_in_the_int8_container(tmp_path) -> None:
    four_bit = QuantizerConfig(QuantScheme(4, granularity=PerChannel(0)))
    model = build("tensorrt", weight=four_bit)
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "model.onnx"
    export(model, x, path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("QuantizeLinear") == 7
    # the exported graph computes exactly the 4-bit fake-quant model: codes stay in [-8, 7]
    assert steps_off(model, path, x, optimize=False).max() == 0


def test_weights_wider_than_8_bits_do_not_pretend_to_export(tmp_path) -> None:
    """ONNX Q/DQ as torch exports it carries 8-bit codes: 16-bit weights fail loudly."""
    sixteen = QuantizerConfig(QuantScheme(16, granularity=PerChannel(0)))
    with pytest.raises(Exception):  # noqa: B017 (torch raises its own exporter error types)
        export(build("tensorrt", weight=sixteen), torch.randn(1, 3, 32, 32), tmp_path / "m.onnx")

"""bienbao.quant: quantization-aware training on PyTorch's native fake-quantize ops.

Lifecycle: ``prepare_qat(model, policy, fuse=...)`` -> ``calibrate(model, forward_loop)`` ->
train -> ``convert(model)`` -> ``torch.onnx.export`` (QuantizeLinear/DequantizeLinear).
"""

from .bias_correction import correct_bias
from .calibrate import calibrate
from .config import (
    PRESETS,
    ConfigError,
    LayerQConfig,
    ObserverSpec,
    QuantizerConfig,
    QuantPolicy,
    Rule,
    get_preset,
)
from .config_io import policy_from_dict, quantizer_from_dict
from .critical import CriticalRanking, LayerOutputError, critical_rules, rank_by_output_error
from .fake_quantize import FakeQuantize, QuantizerNotReadyError
from .fusion import FUSERS, QAT_FUSERS, fold_conv_bn, fold_linear_bn, fuse_modules
from .lifecycle import (
    convert,
    enable_fake_quant,
    enable_observers,
    freeze_bn_stats,
    iter_quantizers,
    qat_layers,
    set_weight_bits,
)
from .observers import (
    OBSERVERS,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    Observer,
    ObserverNotReadyError,
)
from .prepare import prepare_qat, quantizable_layers
from .qat import QAT_MODULES, QATConv2d, QATConvBn2d, QATLinear, QATModule
from .scheme import PerChannel, PerTensor, QuantScheme, reference_fake_quantize
from .sensitivity import LayerSensitivity, SensitivityReport, sensitivity_analysis, with_critical_layers
from .summary import LayerSummary, print_quant_summary, quant_summary

__all__ = [
    "FUSERS",
    "OBSERVERS",
    "PRESETS",
    "QAT_FUSERS",
    "QAT_MODULES",
    "ConfigError",
    "CriticalRanking",
    "FakeQuantize",
    "HistogramObserver",
    "LayerOutputError",
    "LayerQConfig",
    "LayerSensitivity",
    "LayerSummary",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "ObserverNotReadyError",
    "ObserverSpec",
    "PerChannel",
    "PerTensor",
    "QATConv2d",
    "QATConvBn2d",
    "QATLinear",
    "QATModule",
    "QuantPolicy",
    "QuantScheme",
    "QuantizerConfig",
    "QuantizerNotReadyError",
    "Rule",
    "SensitivityReport",
    "calibrate",
    "convert",
    "correct_bias",
    "critical_rules",
    "enable_fake_quant",
    "enable_observers",
    "fold_conv_bn",
    "fold_linear_bn",
    "freeze_bn_stats",
    "fuse_modules",
    "get_preset",
    "iter_quantizers",
    "policy_from_dict",
    "prepare_qat",
    "print_quant_summary",
    "qat_layers",
    "quant_summary",
    "quantizable_layers",
    "quantizer_from_dict",
    "rank_by_output_error",
    "reference_fake_quantize",
    "sensitivity_analysis",
    "set_weight_bits",
    "with_critical_layers",
]

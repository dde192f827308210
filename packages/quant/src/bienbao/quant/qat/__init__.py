"""QAT modules: float layers with fake-quantized inputs, weights and outputs."""

from ._base import QAT_MODULES, QATModule, register_qat_module
from .conv import QATConv2d
from .conv_bn import QATConvBn2d
from .linear import QATLinear

__all__ = ["QAT_MODULES", "QATConv2d", "QATConvBn2d", "QATLinear", "QATModule", "register_qat_module"]

"""Which weight width suits which CPU, and what to do when a file meets the other kind.

ONNX Runtime's x86 u8s8 kernels without VNNI (SSE4.1, AVX2, AVX-512 without VNNI) add pairs of
uint8 x int8 products in int16 with saturation: full 8-bit weights can overflow there, 7-bit ones
cannot (ONNX Runtime's own ``reduce_range``). Everywhere else (x86 with AVX512-VNNI or AVX-VNNI,
ARM, TensorRT, LiteRT) the products are exact, and 7-bit weights only cost accuracy.

So bienbao exports either width and writes it into the file (``Quantization.weight_bits``), and a
backend that opens the file asks ``weight_width_plan``:

- an 8-bit file on ONNX Runtime on a CPU whose u8s8 kernels saturate: the session option
  ``session.x64quantprecision=1`` (ONNX Runtime's exact u8u8 kernels, documented in
  ``onnxruntime_session_options_config_keys.h``), so the file is right; a note says it is slower
  than the 7-bit file there;
- a 7-bit file where the products are exact: it runs, with a note that an 8-bit file is more
  accurate there;
- OpenVINO on x86 without VNNI with 8-bit weights: OpenVINO's own guidance for such CPUs is 7-bit
  weights (its "saturation issue"), so a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WeightWidthPlan", "u8s8_saturates", "weight_width_plan"]

X86 = ("x86_64", "amd64", "i386", "i686", "x86")
VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")


def u8s8_saturates(cpu: dict[str, Any]) -> bool:
    """True on x86 without VNNI (``cpu`` as ``bienbao.core.cpu.describe_cpu`` gives it)."""
    return str(cpu.get("arch", "")).lower() in X86 and not any(flag in cpu.get("isa", ()) for flag in VNNI)


@dataclass(frozen=True)
class WeightWidthPlan:
    session_config: dict[str, Any] = field(default_factory=dict[str, Any])  # ONNX Runtime session config entries to set
    note: str | None = None  # what the user should know (printed once when the model loads)

    @property
    def exact_kernels(self) -> bool:
        return self.session_config.get("session.x64quantprecision") == "1"


def weight_width_plan(backend: str, weight_bits: int, cpu: dict[str, Any]) -> WeightWidthPlan:
    """What ``backend`` should do with a file of ``weight_bits``-wide weights on ``cpu`` (0 = float)."""
    if weight_bits not in (7, 8):
        return WeightWidthPlan()
    saturates = u8s8_saturates(cpu)
    where = cpu.get("name") or cpu.get("arch", "this CPU")
    if weight_bits == 8 and saturates and backend == "onnxruntime":
        return WeightWidthPlan(
            {"session.x64quantprecision": "1"},
            f"8-bit weights on {where} (x86 without VNNI): ONNX Runtime's u8s8 kernels would saturate, so the "
            "session uses its exact u8u8 kernels (session.x64quantprecision=1), which are slower; the 7-bit file "
            "(bienbao export --weight-bits 7) is the fast one here",
        )
    if weight_bits == 8 and saturates and backend == "openvino":
        return WeightWidthPlan(
            note=f"8-bit weights on {where} (x86 without VNNI): OpenVINO's int8 kernels may "
            "saturate here (its guidance is 7-bit weights on such CPUs); prefer the 7-bit file"
        )
    if weight_bits == 7 and not saturates:
        return WeightWidthPlan(
            note=f"7-bit weights (made for x86 without VNNI) on {where}, whose int8 products "
            "are exact: an 8-bit file (bienbao export --weight-bits 8) is more accurate here"
        )
    return WeightWidthPlan()

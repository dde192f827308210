"""Layout, precision and file format: three concepts, each defined once, and the one place that
decides which combinations an export can make (names only: the command line lists them without
importing torch).

- **layout**: how the Q/DQ graph is laid out, a property of the quantization policy (its
  ``target:`` key): ``onnxruntime`` (uint8 activations on every conv output, for CPUs),
  ``openvino`` (uint8 activations where each block's output is made, after its SiLU: OpenVINO's
  FakeQuantize placement, as NNCF makes it) or ``tensorrt`` (symmetric int8 on conv inputs and
  shared Add/Concat grids, TensorRT's explicit quantization);
- **precision**: ``int8`` (the checkpoint's quantization, in its layout) or ``fp32`` (the float
  weights, quantizers off);
- **format**: the file, ``onnx``, ``openvino`` (IR), ``tflite`` (LiteRT) or ``engine`` (TensorRT).

``bienbao export --target`` takes a layout for an INT8 file or ``fp32``: ``EXPORT_TARGETS``.
"""

from __future__ import annotations

__all__ = ["EXPORT_TARGETS", "FORMATS", "LAYOUTS", "PRECISIONS", "check_combination"]

#: graph layout -> what it is for
LAYOUTS = {
    "onnxruntime": "uint8 activations around every conv (ONNX Runtime on CPUs)",
    "openvino": "uint8 activations after each block's activation, 8-bit weights (OpenVINO on CPUs)",
    "tensorrt": "symmetric int8 activations, shared Add/Concat grids (TensorRT, Jetson)",
}
PRECISIONS = ("int8", "fp32")
#: file format -> what it writes
FORMATS = {
    "onnx": "ONNX Q/DQ (or FP32)",
    "openvino": "OpenVINO IR (.xml + .bin, FakeQuantize)",
    "tflite": "INT8 TFLite (litert-torch)",
    "engine": "TensorRT engine",
}
#: ``--target``: a layout (an INT8 file in it) or fp32
EXPORT_TARGETS = (*LAYOUTS, "fp32")


def check_combination(target: str, formats: tuple[str, ...] | list[str]) -> None:
    """Raise ``ValueError`` (naming what to write instead) for a target/format pair no export makes.

    - a TensorRT engine takes the tensorrt layout (or fp32): TensorRT has no uint8 activations;
    - OpenVINO IR takes any layout (its FakeQuantize runs either grid) or fp32; the ``openvino``
      layout is the one it runs fastest;
    - TFLite takes either layout (the uint8 grid is restated as int8 with zero point - 128) or fp32;
    - ONNX takes anything.
    """
    if target not in EXPORT_TARGETS:
        raise ValueError(f"target {target!r}: write one of {', '.join(EXPORT_TARGETS)}")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"formats {list(formats)}: write some of {', '.join(FORMATS)}")
    if "engine" in formats and target in ("onnxruntime", "openvino"):
        raise ValueError(
            "a TensorRT engine needs the tensorrt layout (symmetric int8: train with target: tensorrt, e.g. "
            "configs/experiments/exp1_symmetric_quant.yaml, and export --target tensorrt) or fp32; the "
            f"{target} layout's uint8 activations are for CPUs"
        )

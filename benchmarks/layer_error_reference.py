"""Per-block quantization error of bienbao's INT8 ONNX against an independent reference.

    python benchmarks/layer_error_reference.py --fp32 FP32.onnx --int8 BIENBAO_INT8.onnx \
        --data DATASET.yaml [--frames 8] [--calib 32] [--out docs/results/layer-error]

Three files run through ONNX Runtime on the same letterboxed frames (``bienbao.runtime``'s
pre-processing): the FP32 export, bienbao's INT8 export, and ONNX Runtime's own
``quantize_static`` of the same FP32 file (QDQ, uint8 activations, int8 per-channel weights,
min-max calibration on ``--calib`` training frames: the peer every user has). Every conv block's
output (the ``.../act/Mul`` tensor, the same name in all three graphs) is compared with the FP32
file's: SQNR in dB over all frames. Intermediate tensors come from graphs run with ONNX Runtime's
optimisations off, which is the Q/DQ graph's reference semantics; the last line compares the
optimised (deployed) session's detections head with the reference one.

A second check, by hand: the first conv of bienbao's file recomputed in integer arithmetic from
its uint8 input codes, int8 weight codes, scales and zero points (int32 accumulation, bias added in
float, requantized to the output quantizer's grid) against ONNX Runtime's output of that Q/DQ
node. They must agree to the code (a difference means the export writes what it did not train).

Prints a Markdown table; with ``--out`` also writes it, with a plot, to that folder.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from peers import calibration_frames, letterbox, quantize_static_peer

BLOCK_OUTPUT = re.compile(r"^/(model\.\d+(?:/[\w.]+)*)/act/Mul_output_0$")


def block_outputs(model: onnx.ModelProto) -> list[str]:
    names = [o for node in model.graph.node for o in node.output if BLOCK_OUTPUT.match(o)]
    return names


def run_with_outputs(path: Path, names: list[str], frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Values of ``names`` (made graph outputs) on every frame, optimisations off."""
    model = onnx.load(str(path))
    present = {o for node in model.graph.node for o in node.output}
    outputs = {o.name for o in model.graph.output}
    extra = [n for n in dict.fromkeys(names) if n in present and n not in outputs]
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs()]
    values: dict[str, list[np.ndarray]] = {}
    for frame in frames:
        for name, value in zip(wanted, session.run(wanted, {session.get_inputs()[0].name: frame}), strict=True):
            values.setdefault(name, []).append(value)
    return {k: np.concatenate(v) for k, v in values.items()}


def sqnr(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - got) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def first_conv_by_hand(path: Path, frame: np.ndarray) -> tuple[int, int, float]:
    """(codes that differ, codes compared, largest difference in codes) for the first conv."""
    model = onnx.load(str(path))
    values = constants(model)
    nodes = {n.name: n for n in model.graph.node}
    q_in = nodes["/model.0/conv/input_quantizer/QuantizeLinear"]
    w_dq = nodes["/model.0/conv/weight_quantizer/DequantizeLinear"]
    conv = nodes["/model.0/conv/Conv"]
    q_out = nodes["/model.0/conv/output_quantizer/QuantizeLinear"]
    s_in, z_in = float(values[q_in.input[1]]), int(values[q_in.input[2]])
    w_codes, s_w = values[w_dq.input[0]].astype(np.int64), values[w_dq.input[1]].astype(np.float64)
    bias = values[conv.input[2]].astype(np.float64)
    s_out, z_out = float(values[q_out.input[1]]), int(values[q_out.input[2]])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    stride, pad = attrs["strides"][0], attrs["pads"][0]
    # uint8 input codes: round half to even, as QuantizeLinear does
    x = np.clip(np.rint(frame[0] / s_in) + z_in, 0, 255).astype(np.int64) - z_in
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    k = w_codes.shape[-1]
    h = (x.shape[1] - k) // stride + 1
    w = (x.shape[2] - k) // stride + 1
    patches = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride][:, :h, :w]
    acc = np.einsum("chwij,ocij->ohw", patches, w_codes, optimize=True)  # int32-range integer accumulation
    y = acc * (s_in * s_w)[:, None, None] + bias[:, None, None]
    codes = np.clip(np.rint(y / s_out) + z_out, 0, 255)
    ort_codes = run_with_outputs(path, [q_out.output[0]], [frame])[q_out.output[0]][0].astype(np.int64)
    diff = np.abs(codes - ort_codes)
    return int((diff > 0).sum()), int(diff.size), float(diff.max())


def plot(rows: list[tuple[str, float, float]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(8.0, 0.2 * len(rows)), 4.5))
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.plot(x, [r[1] for r in rows], "o-", label="bienbao INT8 (this file)")
    ax.plot(x, [r[2] for r in rows], "s-", label="ONNX Runtime quantize_static")
    ax.set_xticks(x, [r[0] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("SQNR vs FP32 (dB, accumulated)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", required=True, help="FP32 ONNX (bienbao export --target fp32)")
    parser.add_argument("--int8", required=True, help="bienbao INT8 ONNX (onnxruntime layout)")
    parser.add_argument("--data", required=True, help="dataset YAML")
    parser.add_argument("--frames", type=int, default=8, help="validation frames compared (default 8)")
    parser.add_argument("--calib", type=int, default=32, help="quantize_static calibration frames (train split)")
    parser.add_argument("--out", help="folder for layer-error.md and layer-error.png")
    args = parser.parse_args()

    fp32, int8 = Path(args.fp32), Path(args.int8)
    size = onnx.load(str(fp32)).graph.input[0].type.tensor_type.shape.dim[2].dim_value
    work = Path(tempfile.mkdtemp(prefix="bienbao-layer-error-"))
    static = quantize_static_peer(fp32, calibration_frames(Path(args.data), "train", args.calib), work, size)
    frames = [letterbox(p, size) for p in calibration_frames(Path(args.data), "val", args.frames)]
    names = block_outputs(onnx.load(str(fp32)))
    head = onnx.load(str(fp32)).graph.output[0].name
    reference = run_with_outputs(fp32, [*names, head], frames)
    ours = run_with_outputs(int8, [*names, head], frames)
    peer = run_with_outputs(static, [*names, head], frames)
    rows = [
        (BLOCK_OUTPUT.match(n).group(1).replace("/", "."), sqnr(reference[n], ours[n]), sqnr(reference[n], peer[n]))
        for n in names
        if n in ours and n in peer
    ]
    lines = [
        f"{len(frames)} val frames at {size}x{size}; FP32 `{fp32.name}`, INT8 `{int8.name}`, "
        f"quantize_static calibrated on {args.calib} train frames. ONNX Runtime {ort.__version__}.",
        "",
        "| block | bienbao INT8 SQNR dB | quantize_static SQNR dB |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {a:.1f} | {b:.1f} |" for name, a, b in rows]
    lines += [
        "",
        f"detection head output: bienbao {sqnr(reference[head], ours[head]):.1f} dB, "
        f"quantize_static {sqnr(reference[head], peer[head]):.1f} dB",
    ]
    deployed = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    fused = np.concatenate([deployed.run(None, {deployed.get_inputs()[0].name: f})[0] for f in frames])
    lines.append(
        f"optimised (deployed) session vs the reference Q/DQ semantics, head output: {sqnr(ours[head], fused):.1f} dB"
    )
    differ, total, worst = first_conv_by_hand(int8, frames[0])
    lines.append(
        f"first conv by hand (integer codes, scales, zero points) vs ONNX Runtime: {differ} of {total} "
        f"output codes differ, by at most {worst:.0f}"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "layer-error.md").write_text(text + "\n")
        plot(rows, out / "layer-error.png")
        print(f"wrote {out / 'layer-error.md'}, {out / 'layer-error.png'}")


if __name__ == "__main__":
    main()

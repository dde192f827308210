"""7-bit against 8-bit weights on this CPU: are ONNX Runtime's kernels exact, and what do they cost?

    python benchmarks/weight_width.py --checkpoint QAT_OR_PTQ.pt --data DATASET.yaml [--frames 8] [--runs 20]

Exports the checkpoint twice (``--weight-bits 7`` and ``8``), then for each file and each of ONNX
Runtime's two x86 kernel choices (the default u8s8, and ``session.x64quantprecision=1``'s u8u8)
compares the optimised session's output with the file's reference Q/DQ semantics (the same graph
with optimisations off, which computes in float: no saturation possible), as SQNR in dB over the
frames and the largest score difference, and times them interleaved (2 threads, end to end of the
session run). On x86 without VNNI the default kernels saturate 8-bit weights; with VNNI (or on
ARM) both choices are exact. Prints a Markdown table and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from peers import calibration_frames, letterbox

from bienbao.core.cpu import describe_cpu
from bienbao.trainer.export import export_onnx


def session(path: Path, exact: bool, optimised: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if exact:
        options.add_session_config_entry("session.x64quantprecision", "1")
    if not optimised:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sqnr(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - got) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="QAT or PTQ checkpoint")
    parser.add_argument("--data", required=True, help="dataset YAML (val frames)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bienbao-width-"))
    files = {
        bits: export_onnx(args.checkpoint, out / f"w{bits}", "onnxruntime", weight_bits=bits).path for bits in (7, 8)
    }
    frames = [letterbox(p, 640) for p in calibration_frames(Path(args.data), "val", args.frames)]
    sessions = {(bits, exact): session(path, exact) for bits, path in files.items() for exact in (False, True)}
    rows = {}
    for (bits, exact), s in sessions.items():
        reference = session(files[bits], exact=False, optimised=False)
        want = np.concatenate([reference.run(None, {"images": f})[0] for f in frames])
        got = np.concatenate([s.run(None, {"images": f})[0] for f in frames])
        rows[bits, exact] = (sqnr(want, got), float(np.abs(want[:, 4:] - got[:, 4:]).max()))
    times = {key: [] for key in sessions}
    for s in sessions.values():
        s.run(None, {"images": frames[0]})
    for _ in range(args.runs):
        for key, s in sessions.items():
            start = time.perf_counter()
            s.run(None, {"images": frames[0]})
            times[key].append(time.perf_counter() - start)
    cpu = describe_cpu()
    isa = ", ".join(cpu["isa"]) or "no int8 ISA flags"
    print(
        f"CPU: {cpu['name']} ({cpu['arch']}; {isa}: {cpu['int8']}); "
        f"ONNX Runtime {ort.__version__}, 2 threads, 640x640, {args.frames} val frames, {args.runs} runs, "
        "interleaved"
    )
    print()
    print("| weights | kernels | output vs Q/DQ reference, SQNR dB | largest class-score difference | median ms |")
    print("| --- | --- | --- | --- | --- |")
    for (bits, exact), (db, worst) in rows.items():
        kernels = "u8u8 (session.x64quantprecision=1)" if exact else "default (u8s8)"
        print(f"| {bits}-bit | {kernels} | {db:.1f} | {worst:.4f} | {np.median(times[bits, exact]) * 1000:.1f} |")


if __name__ == "__main__":
    main()

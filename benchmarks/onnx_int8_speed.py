"""ONNX Runtime latency: FP32 vs bienbao's INT8 Q/DQ export vs ONNX Runtime's own quantize_static.

    python benchmarks/onnx_int8_speed.py --fp32 FP32.pt --int8 QAT_OR_PTQ.pt [--int8 OTHER.pt ...] \
        --data DATASET.yaml

Exports the checkpoints (bienbao export; each --int8 is labelled by its run folder), builds ONNX
Runtime's ``quantize_static`` graph of the FP32 ONNX (QDQ, uint8 activations, int8 per-channel
weights, calibrated on --calib frames), then times all the models in one process, interleaved
(A B C A B C ...), and prints the medians and the ratios against FP32. Speed is a benchmark, never
a test: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from peers import calibration_frames, letterbox, quantize_static_peer

from bienbao.trainer.export import export_onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", required=True, help="FP32 checkpoint")
    parser.add_argument(
        "--int8",
        required=True,
        action="append",
        help="QAT or PTQ checkpoint (onnxruntime target); repeat to time several in the same run",
    )
    parser.add_argument("--data", required=True, help="dataset YAML (calibration frames for quantize_static)")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calib", type=int, default=32, help="quantize_static calibration frames")
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bienbao-speed-"))
    fp32 = export_onnx(args.fp32, out, "fp32", imgsz=args.imgsz).path
    int8 = {f"int8 {Path(c).parent.name}": export_onnx(c, out, "onnxruntime", imgsz=args.imgsz).path for c in args.int8}
    frames = calibration_frames(Path(args.data), "train", args.calib)
    static = quantize_static_peer(fp32, frames, out, args.imgsz)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    # interleaved sessions: a pool left spinning after its run would slow the next model down
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    models = {"fp32": fp32, **int8, "quantize_static u8": static}
    sessions = {k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for k, p in models.items()}
    x = letterbox(frames[0], args.imgsz)
    times: dict[str, list[float]] = {k: [] for k in models}
    for session in sessions.values():  # warm-up
        session.run(None, {"images": x})
    for _ in range(args.runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, {"images": x})
            times[name].append(time.perf_counter() - start)
    base = float(np.median(times["fp32"]))
    print(
        f"ONNX Runtime {ort.__version__}, {args.threads} threads, {args.imgsz}x{args.imgsz}, {args.runs} runs each, "
        "interleaved"
    )
    for name, path in models.items():
        median = float(np.median(times[name]))
        print(
            f"{name:24s} median {median * 1000:7.1f} ms  p90 {np.percentile(times[name], 90) * 1000:7.1f} ms  "
            f"speed-up vs fp32 {base / median:4.2f}x  size {path.stat().st_size / 1e6:5.2f} MB"
        )


if __name__ == "__main__":
    main()

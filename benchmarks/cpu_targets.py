"""bienbao's INT8 against the fastest thing a user could run instead, end to end, on this CPU.

    python benchmarks/cpu_targets.py --fp32 FP32.pt --int8 QAT.pt --data DATASET.yaml \
        [--int8-openvino OPENVINO_PTQ.pt] [--peer-openvino] [--int8-tensorrt EXP1_PTQ.pt] \
        [--ultralytics-qat ULTRALYTICS_QAT.onnx] [--runs 40] [--out docs/results/cpu-targets.md]

Builds every row itself: bienbao's FP32 and INT8 exports (the INT8 one with 7-bit and 8-bit
weights, and at 384x640 for a 16:9 camera), ONNX Runtime's ``quantize_static`` of the FP32 file
(``peers.quantize_static_peer``), and, with ``--ultralytics-qat``, Ultralytics' own QAT export
(``benchmarks/ultralytics_qat_peer.py`` builds it: ``quantize=8`` training through NVIDIA
ModelOpt, then ``export(format="onnx")``). With ``--int8-openvino``, a checkpoint of the
``openvino`` layout exported as OpenVINO IR (640x640 and 384x640); with ``--peer-openvino``, the
one-command peer ``YOLO(fp32).export(format="openvino", int8=True)`` at both sizes
(``peers.openvino_int8_peer``; needs nncf). ONNX files run on ONNX Runtime and on OpenVINO (when
installed), IR on OpenVINO, all through ``bienbao.runtime.Detector``, so every row pays the same pre- and
post-processing: 2 threads, one interleaved run (A B C ... A B C ...), medians of the whole
``detect`` call on real 640x360 val frames.

Prints the table, the CPU's ISA (lscpu flags that decide INT8 speed) and the issue's targets:

- bienbao INT8 on its best backend against the fastest peer at 640x640 (OpenVINO FP32,
  Ultralytics QAT, ``quantize_static``; target 1.25x);
- INT8 against FP32 on ONNX Runtime (target 1.6x on CPUs without VNNI) and against ``quantize_static``;
- pre-process + post-process per frame (target 1.5 ms).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from peers import calibration_frames, openvino_int8_peer, quantize_static_peer

from bienbao.core.cpu import describe_cpu


def build_files(args: argparse.Namespace, work: Path) -> dict[str, tuple[Path, str]]:
    """label -> (file, 'bienbao' or 'peer')."""
    from bienbao.trainer.export import export_onnx

    fp32 = export_onnx(args.fp32, work / "fp32", "fp32").path
    files = {
        "FP32 (bienbao export --target fp32)": (fp32, "peer"),
        "bienbao INT8, 7-bit weights": (
            export_onnx(args.int8, work / "w7", "onnxruntime", weight_bits=7).path,
            "bienbao",
        ),
        "bienbao INT8, 8-bit weights": (
            export_onnx(args.int8, work / "w8", "onnxruntime", weight_bits=8).path,
            "bienbao",
        ),
        "bienbao INT8, 7-bit, 384x640 (16:9)": (
            export_onnx(args.int8, work / "rect", "onnxruntime", imgsz=(384, 640), weight_bits=7).path,
            "rect",
        ),
        "ONNX Runtime quantize_static": (
            quantize_static_peer(fp32, calibration_frames(Path(args.data), "train", 32), work / "static", 640),
            "peer",
        ),
    }
    if args.int8_openvino:
        from bienbao.trainer.export import ExportSpec, export

        for size, kind in ((640, "bienbao"), ((384, 640), "rect")):
            folder = work / f"openvino_{size if kind == 'bienbao' else '384x640'}"
            made = export(ExportSpec(Path(args.int8_openvino), folder, ("openvino",), "openvino", size))
            label = "bienbao INT8, openvino layout (IR)" + (", 384x640 (16:9)" if kind == "rect" else "")
            files[label] = (made[-1].path, kind)
    if args.peer_openvino:
        for size, kind in (((640, 640), "peer"), ((384, 640), "rect-peer")):
            label = "ultralytics OpenVINO INT8 (NNCF)" + (", 384x640 (16:9)" if kind == "rect-peer" else "")
            folder = work / f"peer_{size[0]}x{size[1]}_openvino_model"
            files[label] = (openvino_int8_peer(Path(args.fp32), Path(args.data), folder, size), kind)
    if args.int8_tensorrt:  # the symmetric layout, the one OpenVINO may fuse best
        files["bienbao INT8, tensorrt layout (symmetric)"] = (
            export_onnx(args.int8_tensorrt, work / "trt", "tensorrt").path,
            "bienbao",
        )
    if args.ultralytics_qat:
        files["Ultralytics QAT export (quantize=8)"] = (Path(args.ultralytics_qat), "peer")
    return files


def targets(files: dict, medians: dict[tuple[str, str], float], stages: dict, base: float) -> list[str]:
    """The issue's targets from the medians (ms) of every (label, backend); ``base``: FP32 on ONNX Runtime."""
    square_ours = {key: value for key, value in medians.items() if files[key[0]][1] == "bienbao"}
    peers = {
        key: value
        for key, value in medians.items()
        if files[key[0]][1] == "peer" and key != ("FP32 (bienbao export --target fp32)", "onnxruntime")
    }
    best_ours = min(square_ours, key=square_ours.get)
    best_peer = min(peers, key=peers.get)
    ours_ort = min(v for k, v in square_ours.items() if k[1] == "onnxruntime")
    static_ort = medians["ONNX Runtime quantize_static", "onnxruntime"]
    pre_post = min(float(np.median([t[0] + t[2] for t in stages[k]])) * 1000 for k in square_ours)
    lines = [
        "",
        "Targets (640x640):",
        f"- bienbao INT8 at its fastest ({best_ours[0]}, {best_ours[1]}: {square_ours[best_ours]:.1f} ms) against the "
        f"fastest peer ({best_peer[0]}, {best_peer[1]}: {peers[best_peer]:.1f} ms): "
        f"**{peers[best_peer] / square_ours[best_ours]:.2f}x** (target 1.25x)",
        f"- bienbao INT8 against FP32 on ONNX Runtime: **{base / ours_ort:.2f}x** (target 1.6x without VNNI); "
        f"against quantize_static on ONNX Runtime: **{static_ort / ours_ort:.2f}x**",
        f"- pre-process + post-process: **{pre_post:.2f} ms** a frame (target 1.5 ms)",
    ]
    rect_ours = {key: value for key, value in medians.items() if files[key[0]][1] == "rect"}
    rect_peers = {key: value for key, value in medians.items() if files[key[0]][1] == "rect-peer"}
    if rect_ours and rect_peers:
        ours, peer = min(rect_ours, key=rect_ours.get), min(rect_peers, key=rect_peers.get)
        lines.append(
            f"- 384x640: bienbao INT8 at its fastest ({ours[0]}, {ours[1]}: {rect_ours[ours]:.1f} ms) against the "
            f"one-command peer ({peer[0]}: {rect_peers[peer]:.1f} ms): **{rect_peers[peer] / rect_ours[ours]:.2f}x** "
            "(target: at least 1.00x)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", required=True, help="QAT checkpoint (ONNX Runtime layout)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--int8-openvino", help="a PTQ/QAT checkpoint in the openvino layout (exp6), as OpenVINO IR")
    parser.add_argument(
        "--peer-openvino", action="store_true", help="also build and time ultralytics' OpenVINO INT8 export (nncf)"
    )
    parser.add_argument("--int8-tensorrt", help="a PTQ/QAT checkpoint in the tensorrt layout (exp1), also timed")
    parser.add_argument("--ultralytics-qat", help="Ultralytics' QAT ONNX export (benchmarks/ultralytics_qat_peer.py)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", help="also write the report here")
    args = parser.parse_args()

    from bienbao.runtime import Detector
    from bienbao.runtime.backends import backend_label

    files = build_files(args, Path(tempfile.mkdtemp(prefix="bienbao-targets-")))
    backends = ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    frames = [cv2.imread(str(p)) for p in calibration_frames(Path(args.data), "val", 8)]
    detectors: dict[tuple[str, str], Detector] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # weight-width notes: the kernels are in the label
        for label, (path, _) in files.items():
            is_ir = path.is_dir() or path.suffix == ".xml"  # OpenVINO IR: OpenVINO only
            for backend in ["openvino"] if is_ir else backends:
                names = None if "Ultralytics" not in label else [str(i) for i in range(33)]
                detectors[label, backend] = Detector(path, backend=backend, conf=0.25, threads=2, names=names)
    totals: dict[tuple[str, str], list[float]] = {key: [] for key in detectors}
    stages: dict[tuple[str, str], list[tuple[float, float, float]]] = {key: [] for key in detectors}
    for detector in detectors.values():
        detector.detect(frames[0])
    for run in range(args.runs):
        frame = frames[run % len(frames)]
        for key, detector in detectors.items():
            start = time.perf_counter()
            _, timing = detector.detect_timed(frame)
            totals[key].append(time.perf_counter() - start)
            stages[key].append(timing)

    def ms(key: tuple[str, str]) -> float:
        return float(np.median(totals[key])) * 1000

    cpu = describe_cpu()
    lines = [
        f"CPU: {cpu['name']} ({cpu['arch']}; ISA: {', '.join(cpu['isa']) or 'none found'}; {cpu['int8']}). "
        f"2 threads, {args.runs} frames per row, one interleaved run, end to end (`Detector.detect`: letterbox, "
        "inference, decoding + NMS) on 640x360 val frames, medians.",
        "",
        "| model | backend (as it reports itself) | end to end ms | pre + post ms | vs FP32 on ONNX Runtime |",
        "| --- | --- | --- | --- | --- |",
    ]
    base = ms(("FP32 (bienbao export --target fp32)", "onnxruntime"))
    for key, detector in detectors.items():
        pre_post = float(np.median([t[0] + t[2] for t in stages[key]])) * 1000
        lines.append(
            f"| {key[0]} | {backend_label(detector.backend)} | {ms(key):.1f} | {pre_post:.2f} | {base / ms(key):.2f}x |"
        )
    lines += targets(files, {key: ms(key) for key in detectors}, stages, base)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

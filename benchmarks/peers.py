"""What the benchmarks compare bienbao against, built by the scripts themselves (one definition).

- ``openvino_int8_peer``: the one command a user types instead of bienbao,
  ``YOLO(fp32).export(format="openvino", int8=True, data=D, imgsz=...)``: ultralytics calling NNCF's
  post-training quantization (8-bit per-channel symmetric weights, uint8 asymmetric activations
  after each block, fast bias correction, calibration on the dataset's val split). Needs
  ultralytics, openvino and nncf. NNCF's result varies between builds of the same command, so a
  comparison takes several builds (``--builds``).
- ``quantize_static_peer``: ONNX Runtime's own post-training quantization of an FP32 ONNX file
  (``quant_pre_process`` then ``quantize_static``: QDQ, uint8 activations, int8 per-channel
  weights, min-max calibration), the INT8 path every ONNX Runtime user has.
- ``calibration_frames``, ``letterbox``: frames of a dataset split with the deployed
  pre-processing (``bienbao.runtime``), so every model sees the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bienbao.runtime.preprocess import preprocess

__all__ = ["calibration_frames", "letterbox", "openvino_int8_peer", "quantize_static_peer"]


def letterbox(path: Path, size: int) -> np.ndarray:
    return preprocess(cv2.imread(str(path)), (size, size))[0]


def calibration_frames(data: Path, split: str, count: int) -> list[Path]:
    """``count`` images spread evenly over ``split`` of a dataset YAML."""
    from bienbao.trainer.evaluation.evaluate import split_images

    images = split_images(data, split)
    return images[:: max(1, len(images) // count)][:count]


def openvino_int8_peer(fp32: Path, data: Path, out: Path, imgsz: tuple[int, int] = (640, 640)) -> Path:
    """ultralytics' OpenVINO INT8 export of ``fp32`` at ``imgsz`` (height, width): the
    ``*_openvino_model/`` folder, moved to ``out`` (``bienbao.runtime`` runs it as it is)."""
    import shutil

    from bienbao.trainer.ultralytics.torchvision_ops import ensure_torchvision_ops

    ensure_torchvision_ops()  # before ultralytics imports torchvision (a CPU-only torch here)
    from ultralytics import YOLO

    work = out.with_name(out.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(fp32, work / "model.pt")  # ultralytics writes its folder beside the checkpoint
    built = Path(YOLO(str(work / "model.pt")).export(format="openvino", int8=True, data=str(data), imgsz=list(imgsz)))
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    built.rename(out)
    shutil.rmtree(work)
    return out


def main() -> None:
    """``python benchmarks/peers.py --fp32 FP32.pt --data D --imgsz 384 640 --builds 3 --out DIR``:
    the one-command peer, built ``--builds`` times, as ``DIR/peer_<h>x<w>_<i>_openvino_model/``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--fp32", required=True, type=Path, help="FP32 ultralytics checkpoint")
    parser.add_argument("--data", required=True, type=Path, help="dataset YAML (NNCF calibrates on its val split)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640], help="one size or height width (default 640)")
    parser.add_argument("--builds", type=int, default=1, help="independent builds (NNCF varies between them)")
    parser.add_argument("--out", type=Path, default=Path("logs/peers"))
    args = parser.parse_args()
    if len(args.imgsz) not in (1, 2):
        parser.error("--imgsz takes one size or height and width")
    height, width = (args.imgsz * 2)[:2]
    for build in range(args.builds):
        folder = args.out / f"peer_{height}x{width}_{build}_openvino_model"
        print(openvino_int8_peer(args.fp32, args.data, folder, (height, width)))


def quantize_static_peer(fp32: Path, frames: list[Path], out: Path, size: int) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{"images": letterbox(p, size)} for p in frames])

        def get_next(self):
            return next(self._batches, None)

    out.mkdir(parents=True, exist_ok=True)
    pre, static = out / "quantize_static_pre.onnx", out / "quantize_static_u8.onnx"
    quant_pre_process(str(fp32), str(pre))
    quantize_static(
        str(pre),
        str(static),
        Frames(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return static


if __name__ == "__main__":
    main()

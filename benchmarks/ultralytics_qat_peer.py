"""Build the peer row "Ultralytics' own QAT export" for benchmarks/cpu_targets.py.

    pip install nvidia-modelopt huggingface_hub    # Ultralytics' QAT runs through NVIDIA ModelOpt (CPU is fine)
    python benchmarks/ultralytics_qat_peer.py --weights FP32.pt --data DATASET.yaml --out ULTRALYTICS_QAT.onnx \
        [--epochs 1] [--fraction 0.25]

Ultralytics' documented recipe: ``model.train(..., quantize=8)`` (quantization-aware training with
ModelOpt's fake quantizers), then ``export(format="onnx", quantize=8)`` (a Q/DQ graph). For the
speed benchmark only the graph's structure matters, so the defaults train one epoch on a quarter of
the given data; for its accuracy (the issue's 12.0 mAP50-95 on unseen recordings) train it as long
as bienbao's QAT.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="where the ONNX file goes")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()

    from bienbao.trainer.ultralytics.torchvision_ops import ensure_torchvision_ops

    ensure_torchvision_ops()  # torchvision's NMS on CPU-only torch (ENV: its CUDA build's ops do not load)
    from ultralytics import YOLO

    project = Path(tempfile.mkdtemp(prefix="ultralytics-qat-"))
    YOLO(args.weights).train(
        data=args.data,
        epochs=args.epochs,
        quantize=8,
        imgsz=args.imgsz,
        batch=4,
        fraction=args.fraction,
        workers=0,
        device="cpu",
        plots=False,
        val=False,
        project=str(project),
        name="run",
        exist_ok=True,
        amp=False,
        fliplr=0.0,
    )
    exported = YOLO(str(project / "run/weights/last.pt")).export(format="onnx", imgsz=args.imgsz, quantize=8)
    shutil.copy(exported, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

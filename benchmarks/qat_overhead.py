"""Training-step cost of QAT over FP32 on the same batch: forward + loss + backward.

    python benchmarks/qat_overhead.py --weights FP32.pt --data DATASET.yaml [--imgsz 640 --batch 8]

Builds the fake-quant model with the policy in configs/quantization.yaml, then times training
steps of both models on one fixed batch of real training images, interleaved (FP32, QAT, FP32,
QAT, ...), and prints the medians and their ratio. A benchmark, not a test: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.tasks import load_checkpoint

import bienbao.trainer.ultralytics  # noqa: F401  (torchvision NMS on CPU-only torch)
from bienbao.quant import calibrate
from bienbao.trainer.config import load_quantization
from bienbao.trainer.ultralytics.qat_model import prepare_yolo_qat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--quantization", help="layer policy (default: ./configs/quantization.yaml, else packaged)")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    cfg = get_cfg(overrides={"imgsz": args.imgsz, "data": args.data})
    data = check_det_dataset(args.data)
    dataset = build_yolo_dataset(cfg, data["train"], args.batch, data, mode="train", stride=32)
    batch = next(iter(DataLoader(dataset, batch_size=args.batch, shuffle=False, collate_fn=dataset.collate_fn)))
    batch["img"] = batch["img"].float() / 255

    fp32, _ = load_checkpoint(args.weights)
    fp32.args = cfg
    setup = load_quantization(args.quantization)
    qat = prepare_yolo_qat(fp32, setup.policy, setup.target)
    calibrate(qat, lambda m: m(batch["img"]))
    qat.args = cfg
    models = {"fp32": fp32.train(), "qat": qat.train()}
    for model in models.values():
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(args.steps + 1):
        for name, model in models.items():
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            loss, _ = model.loss(copy.copy(batch))
            loss.sum().backward()
            if step:  # the first step of each is warm-up
                times[name].append(time.perf_counter() - start)
    fp32_s, qat_s = (float(np.median(times[n])) for n in ("fp32", "qat"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} at {args.imgsz}, "
        f"{args.steps} interleaved steps each"
    )
    print(f"fp32 step {fp32_s:.2f} s   qat step {qat_s:.2f} s   qat / fp32 = {qat_s / fp32_s:.2f}")


if __name__ == "__main__":
    main()

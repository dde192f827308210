"""``bienbao calibrate``: post-training quantization (PTQ) with the QAT policy and no training.

The FP32 checkpoint gets the same quantizers QAT would give it, their ranges are calibrated on N
training batches, and the result is saved as an ultralytics-style checkpoint (the fake-quant model
under ``model``/``ema``) that ``bienbao export`` and ultralytics' ``val`` accept. It is the
baseline QAT must beat.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import torch

from bienbao.core.files import atomic_path, file_sha256
from bienbao.quant import print_quant_summary
from bienbao.trainer.config import CalibrationConfig, TrainConfig, load_quantization
from bienbao.trainer.runs.layout import RunLayout, checked_dataset
from bienbao.trainer.ultralytics.calibration import calibration_images, calibration_loop, prepare_calibrated
from bienbao.trainer.ultralytics.models import calibration_context, load_detection_model
from bienbao.trainer.ultralytics.qat_model import is_quantized

__all__ = ["run_ptq"]


def run_ptq(
    train: TrainConfig, weights: str, policy_path: str, calibration: CalibrationConfig, name: str = "ptq"
) -> Path:
    """Calibrate ``weights`` with the policy at ``policy_path``; returns the saved checkpoint."""
    if not Path(weights).is_file():
        raise FileNotFoundError(f"FP32 checkpoint {weights} not found (run `bienbao train`, or pass --weights)")
    layout = RunLayout(train, name)
    checked_dataset(train.data, fliplr=0.0)
    quantization = load_quantization(policy_path)
    model = load_detection_model(weights)
    if is_quantized(model):
        raise ValueError(f"{weights} is already quantized: calibrate takes an FP32 checkpoint")
    context = calibration_context(train.data, train.imgsz, train.device)
    args, data, device = context.args, context.data, context.device
    model = model.to(device)
    stride = max(int(model.stride.max()), 32)
    qat, _ = prepare_calibrated(
        model,
        quantization,
        calibration_loop(
            args,
            data,
            calibration.batches,
            calibration.batch_size,
            device,
            seed=train.seed,
            stride=stride,
            rect=calibration.rect,
        ),
        calibration.critical_top_k,
        lambda: calibration_images(
            args, data, calibration.critical_inputs, device, seed=train.seed, stride=stride, rect=calibration.rect
        ),
        calibration.bias_correction,
    )
    critical = getattr(qat, "bienbao_critical", [])
    print_quant_summary(qat, notes={c["layer"]: c["reason"] for c in critical})
    layout.checkpoints.mkdir(parents=True, exist_ok=True)
    output = layout.checkpoints / "best.pt"
    qat.args = {**getattr(model, "args", {}), "imgsz": train.imgsz, "data": train.data}
    with atomic_path(output) as tmp:  # never a truncated checkpoint under the final name
        torch.save(
            {
                "date": datetime.datetime.now().isoformat(),
                "model": qat.cpu().eval(),
                "ema": None,
                "train_args": dict(qat.args),
                "bienbao": {
                    "kind": "ptq",
                    "policy": str(policy_path),
                    "target": quantization.target,
                    "source": str(weights),
                    "source_sha256": file_sha256(weights),
                    "calibration_batches": calibration.batches,
                    "calibration_batch_size": calibration.batch_size,
                    "bias_correction": calibration.bias_correction,
                    "calibration_rect": calibration.rect,
                    "critical_layers": critical,  # kept float by calibration.critical_top_k, and why
                },
            },
            tmp,
        )
    print(f"PTQ checkpoint: {output}")
    return output

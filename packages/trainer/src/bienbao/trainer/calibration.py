"""Calibration data: N random batches of training images, letterboxed, without augmentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from ultralytics.data import build_yolo_dataset
from ultralytics.utils import TQDM

from . import _compat  # noqa: F401  (torchvision NMS on CPU-only torch; ultralytics imports torchvision lazily)

__all__ = ["calibration_loop"]


def calibration_loop(
    args: Any, data: dict, batches: int, batch_size: int, device: torch.device, seed: int = 0, stride: int = 32
) -> Callable[[nn.Module], None]:
    """A ``forward_loop`` for ``bienbao.quant.calibrate`` over ``batches`` random training batches.

    ``args`` are ultralytics arguments (``imgsz`` etc.), ``data`` its parsed dataset dict. The images
    are letterboxed as for validation (no mosaic or colour jitter): the ranges should describe
    the images the deployed model will see.
    """
    dataset = build_yolo_dataset(args, data["train"], batch_size, data, mode="val", rect=False, stride=stride)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RandomSampler(dataset, generator=generator),
        collate_fn=dataset.collate_fn,
        num_workers=0,
    )
    total = min(batches, len(loader))

    def forward_loop(model: nn.Module) -> None:
        for index, batch in enumerate(TQDM(loader, total=total, desc="calibrating")):
            if index >= total:
                break
            model(batch["img"].to(device, non_blocking=True).float() / 255)

    return forward_loop

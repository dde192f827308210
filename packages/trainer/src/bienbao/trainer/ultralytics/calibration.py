"""Calibration data: N random batches of training images, letterboxed, without augmentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from ultralytics.data import build_yolo_dataset
from ultralytics.utils import TQDM

__all__ = ["calibration_images", "calibration_loop", "prepare_calibrated"]


def _loader(args: Any, data: dict, batch_size: int, seed: int, stride: int, rect: bool = False) -> DataLoader:
    dataset = build_yolo_dataset(args, data["train"], batch_size, data, mode="val", rect=rect, stride=stride)
    if rect and len({tuple(shape) for shape in dataset.batch_shapes}) > 1:
        # ultralytics gives each batch of its aspect-sorted order one shape: drawn at random, a
        # batch would mix shapes. One aspect ratio (a dashcam's frames) has one shape.
        raise ValueError(
            "calibration.rect: the training images have several aspect ratios "
            f"({len({tuple(s) for s in dataset.batch_shapes})} letterbox shapes); use the square letterbox"
        )
    if rect:  # ultralytics pads validation shapes by half a stride (640x360 -> 384x672); exports do not
        with Image.open(dataset.im_files[0]) as image:
            width, height = image.size
        ratio = np.array([height / width, 1.0] if height < width else [1.0, width / height])
        shape = np.ceil(ratio * args.imgsz / stride).astype(int) * stride
        dataset.batch_shapes = np.tile(shape, (len(dataset.batch_shapes), 1))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RandomSampler(dataset, generator=generator),
        collate_fn=dataset.collate_fn,
        num_workers=0,
    )


def calibration_loop(
    args: Any,
    data: dict,
    batches: int,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    stride: int = 32,
    rect: bool = False,
) -> Callable[[nn.Module], None]:
    """A ``forward_loop`` for ``bienbao.quant.calibrate`` over ``batches`` random training batches.

    ``args`` are ultralytics arguments (``imgsz`` etc.), ``data`` its parsed dataset dict. The images
    are letterboxed as for validation (no mosaic or colour jitter): the ranges should describe
    the images the deployed model will see (``rect``: at their own aspect, as a 16:9 export sees them).
    """
    loader = _loader(args, data, batch_size, seed, stride, rect)
    total = min(batches, len(loader))

    def forward_loop(model: nn.Module) -> None:
        for index, batch in enumerate(TQDM(loader, total=total, desc="calibrating")):
            if index >= total:
                break
            model(batch["img"].to(device, non_blocking=True).float() / 255)

    return forward_loop


def calibration_images(
    args: Any, data: dict, count: int, device: torch.device, seed: int = 0, stride: int = 32, rect: bool = False
) -> list[torch.Tensor]:
    """``count`` training images, letterboxed like the calibration batches, one tensor each."""
    images: list[torch.Tensor] = []
    for batch in _loader(args, data, 1, seed + 1, stride, rect):
        images.append(batch["img"].to(device).float() / 255)
        if len(images) >= count:
            break
    return images


def _head_maps(output: Any) -> Any:
    """The raw head outputs of an eval-mode DetectionModel (box and class logits per level)."""
    return output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else output


def _block_scope(layer: str) -> str:
    """A conv block's quantizers live under the block (``model.1``), its conv at ``model.1.conv``."""
    return layer.removesuffix(".conv")


def prepare_calibrated(
    fp32: nn.Module,
    quantization: Any,
    forward_loop: Callable[[nn.Module], None],
    critical_top_k: int = 0,
    inputs: Callable[[], list[torch.Tensor]] | None = None,
    bias_correction: bool = False,
) -> tuple[nn.Module, Any]:
    """``fp32`` prepared with the policy and calibrated. With ``critical_top_k``: ranked first
    (``bienbao.quant.rank_by_output_error`` on ``inputs()``), the top K layers added to the policy as
    float, prepared and calibrated again. Returns ``(model, ranking or None)``; the chosen layers and
    why are in ``model.bienbao_critical`` (saved with the checkpoint). ``bias_correction``: the
    final model's biases are then corrected on the same batches (``bienbao.quant.correct_bias``)."""
    from bienbao.quant import QuantPolicy, calibrate, correct_bias, critical_rules, rank_by_output_error
    from bienbao.trainer.ultralytics.qat_model import prepare_yolo_qat

    model = prepare_yolo_qat(fp32, quantization.policy, quantization.target)
    calibrate(model, forward_loop)
    if not critical_top_k:
        if bias_correction:
            correct_bias(model, forward_loop)
        return model, None
    if inputs is None:
        raise ValueError("critical_top_k needs calibration inputs to rank the layers on")
    ranking = rank_by_output_error(model, inputs(), output=_head_maps, scope=_block_scope)
    chosen = ranking.top(critical_top_k)
    if not ranking.separated(critical_top_k):
        import warnings

        warnings.warn(
            f"critical layers: #{critical_top_k} ({chosen[-1].name}, {chosen[-1].sqnr_db:.1f} dB) and the next "
            f"({ranking.layers[critical_top_k].name}, {ranking.layers[critical_top_k].sqnr_db:.1f} dB) are within "
            "0.5 dB: the ranking does not separate them on these inputs (try more calibration.critical_inputs)",
            stacklevel=2,
        )
    policy = quantization.policy
    policy = QuantPolicy(
        policy.default, (*policy.rules, *critical_rules(ranking, critical_top_k)), policy.on_unmatched, policy.name
    )
    model = prepare_yolo_qat(fp32, policy, quantization.target)
    calibrate(model, forward_loop)
    if bias_correction:
        correct_bias(model, forward_loop)
    model.bienbao_critical = [
        {"layer": layer.name, "sqnr_db": round(layer.sqnr_db, 2), "reason": ranking.reason(layer.name)}
        for layer in chosen
    ]
    return model, ranking

"""The study scripts' one way to open a QAT checkpoint and to save a changed model into it: the
model ultralytics validates (its EMA when it has one), float; saved as ``model`` with no EMA, the
other entries (train args, bienbao's record) kept, so ``bienbao export`` reads it as any checkpoint."""

from typing import Any

import torch


def load_qat(path: str) -> tuple[dict[str, Any], torch.nn.Module]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    return checkpoint, (checkpoint.get("ema") or checkpoint["model"]).float().eval()


def save_model(checkpoint: dict[str, Any], model: torch.nn.Module, target: str) -> None:
    checkpoint["model"], checkpoint["ema"] = model, None
    torch.save(checkpoint, target)
    print("saved", target)

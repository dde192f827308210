"""Post-training calibration with any observer: ``calibrate(model, forward_loop)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .fake_quantize import QuantizerNotReadyError
from .lifecycle import iter_quantizers

__all__ = ["calibrate"]


def calibrate(model: nn.Module, forward_loop: Callable[[nn.Module], object]) -> nn.Module:
    """Set every quantizer's range from the data ``forward_loop(model)`` runs through the model.

    The model runs in eval mode under ``torch.no_grad()`` with observing on and quantizing off, so
    each layer sees float inputs. Previous observations are discarded. Afterwards each quantizer has
    its ``(scale, zero_point)``, observing is off (ranges frozen) and quantizing is on; the model's
    train/eval mode is restored. ``quant`` never owns a DataLoader: ``forward_loop`` feeds the data.
    """
    quantizers = list(iter_quantizers(model))
    if not quantizers:
        raise ValueError("calibrate: the model has no quantizers; call prepare_qat first")
    for _, quantizer in quantizers:
        quantizer.observer.reset()
        quantizer.enable_observer(True).enable_fake_quant(False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            forward_loop(model)
    finally:
        model.train(was_training)
    unseen = [name for name, q in quantizers if not q.observer.has_data]
    if unseen:
        raise QuantizerNotReadyError(
            f"calibrate: {len(unseen)} of {len(quantizers)} quantizers saw no data (e.g. {', '.join(unseen[:3])}); "
            "does forward_loop run the model on at least one batch that reaches every layer?"
        )
    for _, quantizer in quantizers:
        quantizer.update_qparams()
        quantizer.enable_observer(False).enable_fake_quant(True)
    return model

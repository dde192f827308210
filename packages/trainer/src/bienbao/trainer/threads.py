"""Every core for torch on CPU.

ultralytics' ``select_device`` sets torch to ``min(8, cores - 1)`` threads on CPU, keeping a core
for dataloader workers, and then runs CPU training with no workers: on a 2-core machine, one thread
and half the machine idle. ``use_all_cores`` hands the cores back; bienbao registers it as a
callback that runs after ultralytics picked the device (start of training, validation, prediction)
and calls it directly after its own ``select_device``.
"""

from __future__ import annotations

import os

import torch

__all__ = ["use_all_cores"]


def use_all_cores(owner: object = None) -> None:
    """Torch gets ``os.cpu_count()`` threads when ``owner`` (a trainer, validator or predictor:
    anything with a ``device``) runs on CPU, or when there is no owner."""
    device = getattr(owner, "device", None)
    if device is not None and torch.device(device).type != "cpu":
        return
    cores = os.cpu_count() or 1
    if torch.get_num_threads() < cores:
        torch.set_num_threads(cores)

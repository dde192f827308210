"""Make ``import torchvision`` work where its compiled extension cannot load.

The registry's torchvision 0.28 is a CUDA build: with the CPU build of torch 2.13 its ``_C``
library fails to load, and torchvision's import then fails registering fake kernels for
``torchvision::nms``. If (and only if) loading the real extension fails, this registers the
``nms`` and ``qnms`` schemas with a pure-torch kernel before torchvision is imported, then tells
torchvision its ops are present (``torchvision.extension._has_ops``), so ``torchvision.ops.nms``
(which ultralytics calls once torchvision is imported) runs the fallback. Other compiled
torchvision ops (``roi_align``, ...) stay unavailable; nothing in this project uses them.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os

import torch

__all__ = ["ensure_torchvision_ops", "nms_reference"]

log = logging.getLogger(__name__)
_LIBRARIES: list[torch.library.Library] = []  # kept alive: dropping one unregisters its ops


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS as torchvision defines it: indices kept, by decreasing score; boxes are
    ``(x1, y1, x2, y2)``; a box is dropped when its IoU with a kept box is > ``iou_threshold``."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()
    order = torch.argsort(scores, descending=True, stable=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep)


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision at all: nothing to patch
    folder = next(iter(spec.submodule_search_locations))
    libraries = glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(os.path.join(folder, "_C*.pyd"))
    if not libraries:
        return False
    try:
        torch.ops.load_library(libraries[0])
    except (OSError, RuntimeError) as exc:
        log.debug("torchvision's extension does not load (%s); using the pure-torch NMS", exc)
        return False
    return True


def ensure_torchvision_ops() -> bool:
    """Register the fallback if needed; returns True when the fallback is in use."""
    if _LIBRARIES:
        return True
    if hasattr(torch.ops.torchvision, "nms") or _extension_loads():
        return False
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.impl("nms", nms_reference, "CPU")
    library.impl("nms", nms_reference, "CUDA")
    _LIBRARIES.append(library)
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
    return True

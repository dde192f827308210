"""Imported before ultralytics by every module that uses it: torchvision's NMS on CPU-only torch."""

from ._torchvision_compat import ensure_torchvision_ops

ensure_torchvision_ops()

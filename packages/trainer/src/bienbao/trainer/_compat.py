"""Imported before ultralytics by every module that uses it: torchvision's NMS on CPU-only torch,
then the check that the installed ultralytics is one bienbao supports (``ultralytics_seam``)."""

from ._torchvision_compat import ensure_torchvision_ops
from .ultralytics_seam import check_ultralytics

ensure_torchvision_ops()
check_ultralytics()

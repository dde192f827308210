"""bienbao.trainer: FP32 and QAT training of YOLOv8 on Vietnamese traffic signs.

Importing it makes torchvision importable on a CPU-only torch (see ``_torchvision_compat``).
"""

from ._torchvision_compat import ensure_torchvision_ops, nms_reference

ensure_torchvision_ops()

__all__ = ["ensure_torchvision_ops", "nms_reference"]

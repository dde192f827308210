"""bienbao.trainer: FP32 and QAT training of YOLOv8 on Vietnamese traffic signs, and export.

The package itself imports nothing heavy (``bienbao --help`` loads its command registrations);
each module that uses ultralytics imports ``._compat``, which makes torchvision importable
on a CPU-only torch (see ``_torchvision_compat``).
"""

__all__: list[str] = []

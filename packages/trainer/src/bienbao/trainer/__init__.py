"""bienbao.trainer: FP32 and QAT training of YOLOv8 on Vietnamese traffic signs, and export.

The package itself imports nothing heavy (``bienbao --help`` loads its command registrations).
Everything that touches ultralytics is in ``bienbao.trainer.ultralytics`` (the seam: importing it
checks the installed version and puts torchvision's CPU ops in place first); the map of the other
subpackages is in DEVELOPERS.md.
"""

__all__: list[str] = []

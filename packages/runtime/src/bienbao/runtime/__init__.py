"""bienbao.runtime: torch-free traffic-sign inference for the device.

Importing this package never imports torch or ultralytics (a test enforces it).
"""

from ._deps import MissingDependencyError, require
from .names import DISPLAY_NAMES, display_name

__all__ = ["DISPLAY_NAMES", "MissingDependencyError", "display_name", "require"]

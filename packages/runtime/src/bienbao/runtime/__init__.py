"""bienbao.runtime: torch-free traffic-sign inference for the device.

Importing this package never imports torch or ultralytics (a test enforces it); OpenCV and the
backends are imported when first used.
"""

from ._deps import MissingDependencyError, require
from .detector import Detector, run_stages
from .metadata import ModelMetadata
from .names import DISPLAY_NAMES, display_name
from .postprocess import Detections, postprocess
from .preprocess import Letterbox, preprocess

__all__ = [
    "DISPLAY_NAMES",
    "Detections",
    "Detector",
    "Letterbox",
    "MissingDependencyError",
    "ModelMetadata",
    "display_name",
    "postprocess",
    "preprocess",
    "require",
    "run_stages",
]

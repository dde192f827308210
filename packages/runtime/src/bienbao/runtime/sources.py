"""Video sources: what a ``--source`` string means, and the Jetson CSI GStreamer pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .redact import redact

__all__ = ["FLIP_METHODS", "IMAGE_SUFFIXES", "Source", "csi_pipeline", "parse_source"]

#: still-image file suffixes OpenCV reads (the one definition: bench sources, datasets, evaluation)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Source:
    """``kind`` is camera (index or V4L2 device), file, stream (RTSP/HTTP) or csi (GStreamer)."""

    kind: str
    target: str | int
    live: bool

    @property
    def label(self) -> str:
        """The target as it may be printed: a stream URL's password masked."""
        return redact(self.target)

    def open_args(self) -> tuple[Any, ...]:
        """Arguments for ``cv2.VideoCapture``."""
        if self.kind == "csi":
            import cv2

            return (self.target, cv2.CAP_GSTREAMER)
        return (self.target,)


def csi_pipeline(width: int = 1280, height: int = 720, fps: int = 30, sensor_id: int = 0, flip: int = 0) -> str:
    """A Jetson CSI camera through ``nvarguscamerasrc``, converted to BGR for OpenCV (needs an
    OpenCV built with GStreamer: JetPack's, not the registry's ``opencv-python``)."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw, format=BGRx ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1"
    )


#: nvvidconv's flip-method values: a CSI sensor mounted upside down is 2, mirrored 4 or 6
FLIP_METHODS = {
    0: "none",
    1: "counterclockwise",
    2: "rotate-180",
    3: "clockwise",
    4: "horizontal-flip",
    5: "upper-right-diagonal",
    6: "vertical-flip",
    7: "upper-left-diagonal",
}


def parse_source(spec: str, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> Source:
    """``0`` (camera index), ``/dev/video0``, ``rtsp://...``/``http(s)://...``, ``csi`` or ``csi:1``
    (Jetson CSI sensor; ``flip``: nvvidconv's flip-method, see ``FLIP_METHODS``), or a video file path."""
    if flip not in FLIP_METHODS:
        raise ValueError(
            f"flip {flip}: nvvidconv's flip-method is one of "
            + ", ".join(f"{k} ({v})" for k, v in FLIP_METHODS.items())
        )
    if spec.isdigit():
        return Source("camera", int(spec), live=True)
    if spec.startswith("/dev/video"):
        return Source("camera", spec, live=True)
    if spec.split("://", 1)[0] in ("rtsp", "rtmp", "http", "https"):
        return Source("stream", spec, live=True)
    if spec == "csi" or spec.startswith("csi:"):
        sensor = int(spec.split(":", 1)[1]) if ":" in spec else 0
        return Source("csi", csi_pipeline(width, height, fps, sensor, flip), live=True)
    if not Path(spec).is_file():
        raise FileNotFoundError(
            f"video source {redact(spec)!r}: not a camera index, device, stream URL, 'csi' or a file"
        )
    return Source("file", spec, live=False)

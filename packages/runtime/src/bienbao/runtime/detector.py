"""``Detector``: the three pure stages put together, configured by the model file's metadata.

    detector = Detector("model.onnx")          # backend from the suffix, names and size from metadata
    detections = detector.detect(frame)         # BGR frame -> boxes in frame pixels

No per-frame state is kept on the detector: ``detect`` is preprocess -> infer -> postprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .backends import load_backend
from .metadata import ModelMetadata
from .postprocess import Detections, postprocess
from .preprocess import preprocess

__all__ = ["Detector"]


class Detector:
    def __init__(self, model_path: str | Path, backend: str = "auto", conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 300, names: Sequence[str] | None = None, **backend_options) -> None:
        """``names`` is needed only for a file without bienbao metadata (it then must be given)."""
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise ValueError(f"conf={conf}, iou={iou}: both must be in [0, 1]")
        self.backend = load_backend(backend, model_path, **backend_options)
        self.metadata: ModelMetadata | None = self.backend.metadata
        if self.metadata is not None:
            if names is not None and tuple(names) != self.metadata.names:
                raise ValueError("names given, but the model carries different ones in its metadata")
            self.names = self.metadata.names
        elif names is None:
            raise ValueError(f"{model_path} is not a bienbao export (no metadata): pass names=[...] (the class "
                             "names, in training order) to run it anyway")
        else:
            self.names = tuple(names)
        self.input_size = self.backend.input_size
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def detect(self, frame: np.ndarray) -> Detections:
        tensor, box = preprocess(frame, self.input_size)
        output = self.backend.infer(tensor)
        return postprocess(output, box, self.conf, self.iou, self.max_det, self.names)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Frames of any sizes; run one at a time (exports have a fixed batch of 1)."""
        return [self.detect(frame) for frame in frames]

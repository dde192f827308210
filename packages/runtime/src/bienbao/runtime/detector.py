"""``Detector``: the three pure stages put together, configured by the model file's metadata.

    detector = Detector("model.onnx")          # backend from the suffix, names and size from metadata
    detections = detector.detect(frame)         # BGR frame -> boxes in frame pixels

No per-frame state is kept on the detector: ``detect`` is preprocess -> infer -> postprocess.
``run_stages`` is the same chain for any ``infer`` callable, timed per stage: what the benchmark
and the evaluation of exported files and torch modules time and score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends import load_backend
from .metadata import MetadataError, ModelMetadata
from .postprocess import Detections, postprocess
from .preprocess import preprocess

__all__ = ["Detector", "run_stages"]


def run_stages(
    infer: Callable[[np.ndarray], np.ndarray],
    frame: np.ndarray,
    input_size: tuple[int, int],
    names: tuple[str, ...] = (),
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    multi_label: bool = False,
) -> tuple[Detections, tuple[float, float, float]]:
    """One BGR frame through preprocess -> ``infer`` -> postprocess; the detections and the
    seconds each stage took (pre-process, inference, post-process)."""
    t0 = time.perf_counter()
    tensor, box = preprocess(frame, input_size)
    t1 = time.perf_counter()
    output = infer(tensor)
    t2 = time.perf_counter()
    found = postprocess(output, box, conf, iou, max_det, names, multi_label=multi_label)
    return found, (t1 - t0, t2 - t1, time.perf_counter() - t2)


class Detector:
    def __init__(
        self,
        model_path: str | Path,
        backend: str = "auto",
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        names: Sequence[str] | None = None,
        **backend_options: Any,
    ) -> None:
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
            raise ValueError(
                f"{model_path} is not a bienbao export (no metadata): pass names=[...] (the class "
                "names, in training order) to run it anyway"
            )
        else:
            self.names = tuple(names)
        self.input_size = self.backend.input_size
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self._check_output(model_path)

    def _check_output(self, model_path: str | Path) -> None:
        """One inference on a blank input: the output must have a row per class the names list
        (``4 + nc``); a file whose metadata or sidecar names other classes than its network
        predicts would label every detection with a wrong name."""
        output = self.backend.infer(np.zeros((1, 3, *self.input_size), np.float32))
        if output.ndim != 3:
            raise MetadataError(
                f"{model_path}: its output has the shape {tuple(output.shape)}, not (1, 4 + classes, anchors): "
                "not a YOLOv8 detection export"
            )
        if output.shape[1] - 4 != len(self.names):
            raise MetadataError(
                f"{model_path}: its network predicts {output.shape[1] - 4} classes, its metadata names "
                f"{len(self.names)}: the file and its metadata (or sidecar) do not belong together"
            )

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detect_timed(frame)[0]

    def detect_timed(self, frame: np.ndarray) -> tuple[Detections, tuple[float, float, float]]:
        """``detect``, with the seconds spent in pre-process, inference and post-process."""
        return run_stages(self.backend.infer, frame, self.input_size, self.names, self.conf, self.iou, self.max_det)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Frames of any sizes; run one at a time (exports have a fixed batch of 1)."""
        return [self.detect(frame) for frame in frames]

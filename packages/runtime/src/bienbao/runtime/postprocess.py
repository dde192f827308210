"""YOLOv8 output decoding and class-aware NMS in numpy; ``Detections`` of stable shape.

The exported model's output is ``(1, 4 + nc, anchors)``: box centre, width and height in network
pixels, then one sigmoid score per class. ``postprocess`` keeps each anchor's best class above
``conf``, runs greedy NMS per class (boxes offset by class, the usual trick), keeps the
``max_det`` best and maps the boxes back to frame pixels through the ``Letterbox``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .preprocess import Letterbox

__all__ = ["Detections", "box_iou", "nms", "postprocess"]


@dataclass(frozen=True)
class Detections:
    """Boxes ``(N, 4)`` xyxy float32 in frame pixels, ``scores (N,)``, ``class_ids (N,)`` int64."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: tuple[str, ...] = ()

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def labels(self) -> list[str]:
        return [self.names[i] if i < len(self.names) else str(i) for i in self.class_ids]

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready: one dict per detection."""
        return [
            {
                "box": [round(float(v), 1) for v in box],
                "score": round(float(score), 4),
                "class_id": int(c),
                "name": label,
            }
            for box, score, c, label in zip(self.boxes, self.scores, self.class_ids, self.labels, strict=True)
        ]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M)."""
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS over xyxy ``boxes``; indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    output: np.ndarray,
    box: Letterbox,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    names: tuple[str, ...] = (),
    multi_label: bool = False,
    max_candidates: int = 30_000,
) -> Detections:
    """One image's raw output ``(1, 4 + nc, A)`` or ``(4 + nc, A)`` -> ``Detections``.

    Each anchor proposes its best class; with ``multi_label`` every class above ``conf`` (the
    protocol of ultralytics' validation, which mAP at a low ``conf`` is defined by; detection on
    a device wants one label per sign). At most ``max_candidates`` highest scores enter NMS.
    """
    prediction = output[0] if output.ndim == 3 else output
    scores_all = prediction[4:]
    if multi_label:
        class_ids, anchors = np.nonzero(scores_all > conf)
        scores = scores_all[class_ids, anchors]
    else:
        # the best score per anchor first (a max over the class axis is one fast pass; an argmax
        # over it is ten times slower), the class only for the few anchors above conf
        best = scores_all.max(0)
        anchors = np.flatnonzero(best > conf)
        scores, class_ids = best[anchors], scores_all[:, anchors].argmax(0)
    if not len(anchors):
        return Detections.empty(names)
    if len(scores) > max_candidates:
        top = np.argpartition(-scores, max_candidates)[:max_candidates]
        anchors, scores, class_ids = anchors[top], scores[top], class_ids[top]
    xywh = prediction[:4, anchors].T
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    offset = class_ids[:, None].astype(np.float32) * 7680.0  # class-aware NMS: classes never overlap
    kept = nms(xyxy + offset, scores, iou)[:max_det]
    return Detections(
        box.to_source(xyxy[kept]), scores[kept].astype(np.float32), class_ids[kept].astype(np.int64), names
    )

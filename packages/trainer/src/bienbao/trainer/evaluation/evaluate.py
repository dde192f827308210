"""``bienbao evaluate``: accuracy of what is deployed, on a dataset split.

A PyTorch checkpoint (FP32, PTQ or QAT fake-quant) is scored by ultralytics' own validator, on
the square letterbox the exported files use (``rect=False``). An exported file (ONNX, TFLite,
TensorRT engine) is run through ``bienbao.runtime`` (the deployed pre-processing and backend) and
scored with ultralytics' protocol: every class above the low ``conf`` is a candidate
(multi-label NMS), the same matching rule and ``ap_per_class``. The two agree where ultralytics
keeps every label (docs/results/design-measurements.md); they differ where it drops them: a label
file mixing polygon and box lines loses its labels there, not here.

Result keys (``Evaluation.to_dict``): ``model``, ``data``, ``split``, ``evaluator``
(``ultralytics``, or ``bienbao.runtime, <backend (provider)>``), ``images``, ``instances``, ``map50``, ``map50_95``,
``precision``, ``recall`` (mean over classes at the best-F1 confidence), ``per_class`` (class name ->
``ap50``, ``ap50_95``, ``instances``), ``speed_ms`` (per image: preprocess, inference, postprocess),
``pr_curve`` (``recall`` and ``precision`` lists: the class-mean precision-recall curve at IoU 0.5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bienbao.runtime.backends import is_model_path
from bienbao.trainer.dataset import (
    IMAGE_SUFFIXES,
    DatasetError,
    check_names,
    dataset_names,
    label_path,
    load_dataset,
)

__all__ = ["Evaluation", "evaluate", "evaluate_module", "label_targets", "match_predictions", "split_images"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass(frozen=True)
class Evaluation:
    model: str
    data: str
    split: str
    evaluator: str
    images: int
    instances: int
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class: dict[str, dict] = field(default_factory=dict)
    speed_ms: dict[str, float] = field(default_factory=dict)
    pr_curve: dict[str, list[float]] = field(default_factory=dict)
    #: per image, in order: the matching statistics (``tp``, ``conf``, ``pred_cls``, ``target_cls``)
    #: that paired comparisons resample (``bootstrap.paired_difference``); not in ``to_dict``
    per_image: dict[str, list] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("per_image")
        return data

    def table(self) -> str:
        lines = [
            f"{self.model} on {self.split} ({self.images} images, {self.instances} signs; {self.evaluator})",
            f"  mAP50 {self.map50:.4f}  mAP50-95 {self.map50_95:.4f}  P {self.precision:.4f}  "
            f"R {self.recall:.4f}  " + "  ".join(f"{k} {v:.1f} ms" for k, v in self.speed_ms.items()),
        ]
        for name, row in sorted(self.per_class.items(), key=lambda kv: -kv[1]["instances"]):
            lines.append(f"    {name:40s} {row['instances']:4d}  AP50 {row['ap50']:.3f}  AP50-95 {row['ap50_95']:.3f}")
        return "\n".join(lines)


def match_predictions(pred_classes: np.ndarray, true_classes: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """ultralytics' greedy rule: detections (by descending confidence) claim the best unclaimed
    target of their class, per IoU threshold. ``iou`` is (targets, detections); returns (D, 10)."""
    correct = np.zeros((len(pred_classes), len(IOU_THRESHOLDS)), dtype=bool)
    iou = iou * (true_classes[:, None] == pred_classes[None, :])
    matched = np.zeros((iou.shape[0], len(IOU_THRESHOLDS)), dtype=bool)
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        best = available.argmax(0)
        correct[j] = available[best, range(len(IOU_THRESHOLDS))] >= IOU_THRESHOLDS
        matched[best, range(len(IOU_THRESHOLDS))] |= correct[j]
    return correct


def label_targets(label: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Classes and pixel xyxy boxes of a YOLO label file (polygons become their bounding box)."""
    classes, boxes = [], []
    if label.is_file():
        for number, line in enumerate(label.read_text().splitlines(), 1):
            values = [float(v) for v in line.split()]
            if not all(math.isfinite(v) for v in values):  # a NaN box would count as a sign nobody can find
                raise DatasetError(
                    f"{label} line {number}: a NaN or infinite number ({line.strip()[:60]}): fix the label"
                )
            if len(values) == 5:
                cx, cy, w, h = values[1:]
                box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            elif len(values) >= 7:
                xs, ys = values[1::2], values[2::2]
                box = [min(xs), min(ys), max(xs), max(ys)]
            else:
                continue
            classes.append(int(values[0]))
            boxes.append(box)
    scale = np.array([width, height, width, height], np.float32)
    return np.array(classes, np.int64), np.array(boxes, np.float32).reshape(-1, 4) * scale


def split_images(data: Path, split: str) -> list[Path]:
    """The images of ``split``; ``val+test`` joins splits (the question "which model is better"
    wants every labelled frame the models were not trained on)."""
    folders = load_dataset(data).splits
    images: list[Path] = []
    for part in split.split("+"):
        if part not in folders:
            raise ValueError(f"{data} has no '{part}' split (it has {', '.join(folders)})")
        images += sorted(p for folder in folders[part] for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return images


def _pr_curve(recall: np.ndarray, precision: np.ndarray) -> dict[str, list[float]]:
    """The class-mean curve at IoU 0.5, on 101 recall points (ultralytics computes 1000)."""
    precision = np.asarray(precision)
    if precision.ndim != 2 or not len(precision):
        return {}
    points = np.linspace(0, 1, 101)
    mean = np.interp(points, np.asarray(recall), precision.mean(0))
    return {"recall": points.round(3).tolist(), "precision": mean.round(4).tolist()}


def _summarise(
    model: str,
    data: Path,
    split: str,
    evaluator: str,
    names: list[str],
    images: int,
    stats: dict,
    speed: dict[str, float],
) -> Evaluation:
    from bienbao.trainer.ultralytics.seam import ap_per_class

    target_cls = np.concatenate(stats["target_cls"]) if stats["target_cls"] else np.zeros(0, np.int64)
    tp = np.concatenate(stats["tp"]) if stats["tp"] else np.zeros((0, 10), bool)
    conf = np.concatenate(stats["conf"]) if stats["conf"] else np.zeros(0)
    pred_cls = np.concatenate(stats["pred_cls"]) if stats["pred_cls"] else np.zeros(0)
    if len(tp) == 0 or len(target_cls) == 0:
        return Evaluation(model, str(data), split, evaluator, images, len(target_cls), 0.0, 0.0, 0.0, 0.0, {}, speed)
    result = ap_per_class(tp, conf, pred_cls, target_cls)
    p, r, ap, classes = result.precision, result.recall, result.ap, result.classes
    recall, precision = result.curve_recall, result.curve_precision
    per_class = {
        names[int(c)]: {
            "ap50": round(float(ap[i, 0]), 4),
            "ap50_95": round(float(ap[i].mean()), 4),
            "instances": int((target_cls == c).sum()),
        }
        for i, c in enumerate(classes)
    }
    return Evaluation(
        model,
        str(data),
        split,
        evaluator,
        images,
        len(target_cls),
        float(ap[:, 0].mean()),
        float(ap.mean()),
        float(p.mean()),
        float(r.mean()),
        per_class,
        speed,
        _pr_curve(recall, precision),
        per_image=stats,
    )


def _evaluate_exported(
    model: Path, data: Path, split: str, conf: float, iou: float, backend: str = "auto", precision: str | None = None
) -> Evaluation:
    from bienbao.runtime import Detector
    from bienbao.runtime.backends import backend_label, split_options

    names = dataset_names(data)
    options, ignored = split_options(backend, model, {"precision": precision} if precision else {})
    if ignored:
        raise ValueError(f"precision={precision}: only the openvino backend takes an inference precision")
    detector = Detector(model, backend=backend, conf=conf, iou=iou, max_det=300, **options)
    check_names(detector.names, names, model, data)
    images = split_images(data, split)
    stats, speed = _run_frames(detector.backend.infer, detector.input_size, detector.names, images, conf, iou)
    return _summarise(
        str(model), data, split, f"bienbao.runtime, {backend_label(detector.backend)}", names, len(images), stats, speed
    )


def evaluate_module(
    model,
    data: str | Path,
    split: str = "val",
    imgsz: int = 640,
    images: int | None = None,
    conf: float = 0.001,
    iou: float = 0.7,
    label: str = "<module>",
) -> Evaluation:
    """Score an ultralytics ``DetectionModel`` as it is now (quantizers on or off) through the
    deployed pre- and post-processing, on the first ``images`` frames of ``split`` (all if None).
    What sensitivity analysis calls once per layer switch."""
    import torch

    data = Path(data)
    names = dataset_names(data)
    frames = split_images(data, split)[:images]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def infer(tensor: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            output = model(torch.from_numpy(tensor).to(device))
        return (output[0] if isinstance(output, (tuple, list)) else output).float().cpu().numpy()

    try:
        stats, speed = _run_frames(infer, (imgsz, imgsz), tuple(names), frames, conf, iou)
    finally:
        model.train(was_training)
    return _summarise(label, data, split, "bienbao.runtime pre/post + torch", names, len(frames), stats, speed)


def _run_frames(
    infer, input_size: tuple[int, int], names: tuple[str, ...], images: list[Path], conf: float, iou: float
) -> tuple[dict[str, list], dict[str, float]]:
    """Run ``infer`` over ``images`` with the runtime's stages; matching stats and ms per stage."""
    import cv2

    from bienbao.runtime.detector import run_stages
    from bienbao.runtime.postprocess import box_iou

    stats: dict[str, list] = {"tp": [], "conf": [], "pred_cls": [], "target_cls": []}
    timing = np.zeros(3)
    for path in images:
        frame = cv2.imread(str(path))
        if frame is None:
            raise ValueError(f"image does not decode: {path}")
        # multi-label at a low conf: ultralytics' validation protocol, which mAP is defined by
        found, seconds = run_stages(infer, frame, input_size, names, conf, iou, 300, multi_label=True)
        timing += seconds
        true_cls, true_boxes = label_targets(label_path(path), frame.shape[1], frame.shape[0])
        stats["target_cls"].append(true_cls)
        # one entry per image in every list (empty when nothing was found): image i is index i,
        # which the paired bootstrap resamples
        order = np.argsort(-found.scores, kind="stable")
        boxes, scores, classes = found.boxes[order], found.scores[order], found.class_ids[order]
        stats["tp"].append(
            match_predictions(classes, true_cls, box_iou(true_boxes, boxes))
            if len(true_cls) and len(classes)
            else np.zeros((len(classes), 10), bool)
        )
        stats["conf"].append(scores)
        stats["pred_cls"].append(classes)
    per_image = timing / max(len(images), 1) * 1000
    return stats, {
        k: round(float(v), 2) for k, v in zip(("preprocess", "inference", "postprocess"), per_image, strict=True)
    }


def _evaluate_checkpoint(
    model: Path, data: Path, split: str, imgsz: int, conf: float, iou: float, batch: int
) -> Evaluation:
    from bienbao.trainer.ultralytics.models import validate_checkpoint

    names = dataset_names(data)
    scores = validate_checkpoint(
        model, data, split, imgsz, conf, iou, batch, lambda model_names: check_names(model_names, names, model, data)
    )
    return Evaluation(
        str(model),
        str(data),
        split,
        "ultralytics",
        len(split_images(data, split)),
        scores.instances,
        scores.map50,
        scores.map50_95,
        scores.precision,
        scores.recall,
        scores.per_class,
        scores.speed_ms,
        _pr_curve(scores.curve_recall, scores.curve_precision),
    )


def evaluate(
    model: str | Path,
    data: str | Path,
    split: str = "val",
    imgsz: int = 640,
    conf: float = 0.001,
    iou: float = 0.7,
    batch: int = 16,
    backend: str = "auto",
    precision: str | None = None,
) -> Evaluation:
    """Score ``model`` on ``split`` of ``data`` (see the module docstring for which evaluator runs);
    ``backend`` picks the runtime backend of an exported file (``openvino`` for an ``.onnx``),
    ``precision`` OpenVINO's inference precision (``f32``, ``bf16``; default: OpenVINO's choice).
    An OpenVINO IR folder (``*_openvino_model/``, as ultralytics exports it) counts as a file."""
    model, data = Path(model), Path(data)
    for path, what in ((model, "model"), (data, "dataset YAML")):
        if not (is_model_path(path) if what == "model" else path.is_file()):
            raise FileNotFoundError(f"{what} not found: {path}")
    if model.suffix == ".pt":
        if "+" in split:
            raise ValueError(
                f"split {split!r}: a checkpoint is scored by ultralytics' validator, one split at a "
                "time; joined splits are for exported files (evaluate the export, or each split)"
            )
        return _evaluate_checkpoint(model, data, split, imgsz, conf, iou, batch)
    return _evaluate_exported(model, data, split, conf, iou, backend, precision)

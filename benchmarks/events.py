"""Confirmed sign events against labelled signs, on dashcam recordings.

Runs the exported model and ``SignTracker`` over each recording's labelled frames in frame order
(frame numbers from the file names: ``<recording>_f<NNNNN>_jpg...``), and compares with the labels:

- **labelled signs**: the labels linked across consecutive labelled frames by the same tracker
  (every label confirmed at once), so one physical sign seen in several frames counts once;
- **events**: confirmed tracks; **signs found**: labelled signs that an event of the right class
  overlaps (IoU >= 0.3 in a frame where both exist); **false events**: events no labelled sign of
  their class overlaps; **duplicates**: extra events on a sign already found; **merges**: events
  whose track overlapped two or more labelled signs (stacked signs taken for one); **class
  changes**: events whose track ended under another class than it was confirmed as;
- **per-frame false positives** (a detection matching no label of its class at IoU 0.5): all of
  them, and those left once only detections of confirmed tracks are kept: what confirmation removes;
  the true positives kept likewise (what it costs).

    python benchmarks/events.py --images ../shared/datasets/vietnam-traffic-sign-detection/test
    python benchmarks/events.py --images datasets/vn-signs-sample/valid datasets/vn-signs-sample/test --repeat 5

``--repeat R`` feeds each frame R times (the sample clip holds each frame 5 video frames). Labels
are read with ``bienbao.trainer.evaluation.evaluate.label_targets`` (the development environment, where the
trainer is installed).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from bienbao.runtime import Detections, Detector
from bienbao.runtime.postprocess import box_iou
from bienbao.runtime.tracking import SignTracker, TrackerConfig
from bienbao.trainer.dataset import label_path
from bienbao.trainer.evaluation.evaluate import label_targets

ROOT = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"^(?P<recording>.+)_f(?P<frame>\d+)_jpg")


def labels(image: Path, width: int, height: int, names: tuple[str, ...]) -> Detections:
    """The image's labels as Detections (score 1), read by the evaluator's own reader (polygon
    lines become their bounding box, as ``bienbao evaluate`` scores them)."""
    classes, boxes = label_targets(label_path(image), width, height)
    return (
        Detections(boxes, np.ones(len(classes), np.float32), classes, names)
        if len(classes)
        else Detections.empty(names)
    )


def recordings(folders: list[Path]) -> dict[str, list[tuple[int, Path]]]:
    found: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for folder in folders:
        for image in sorted((folder / "images").iterdir()):
            match = FRAME.match(image.name)
            if match:
                found[match["recording"]].append((int(match["frame"]), image))
    return {name: sorted(frames) for name, frames in sorted(found.items())}


def match_count(pred: Detections, truth: Detections, iou: float = 0.5) -> np.ndarray:
    """Per prediction: True when it matches a label of its class (greedy, best score first)."""
    hit = np.zeros(len(pred), bool)
    if not len(pred) or not len(truth):
        return hit
    overlap = box_iou(pred.boxes, truth.boxes)
    overlap[pred.class_ids[:, None] != truth.class_ids[None, :]] = 0
    used = set()
    for i in np.argsort(-pred.scores):
        for j in np.argsort(-overlap[i]):
            if overlap[i, j] < iou:
                break
            if j not in used:
                used.add(j)
                hit[i] = True
                break
    return hit


def evaluate(detector: Detector, folders: list[Path], config: TrackerConfig, repeat: int) -> dict:
    totals = defaultdict(int)
    for frames in recordings(folders).values():
        tracker = SignTracker(config, detector.names)
        truth_tracker = SignTracker(TrackerConfig(confirm_hits=1, confirm_window=1, max_missed=1), detector.names)
        per_frame, events = [], []  # per frame: (detections, track ids, truth, truth track ids)
        for step, (number, image_path) in enumerate(f for f in frames for _ in range(repeat)):
            image = cv2.imread(str(image_path))
            height, width = image.shape[:2]
            truth = labels(image_path, width, height, detector.names)
            found = detector.detect(image)
            update = tracker.update(found, number / 30, step)
            events += update.events
            per_frame.append((found, update.track_ids, truth, truth_tracker.update(truth, number / 30, step).track_ids))
        events += tracker.flush()
        truth_tracker.flush()
        # the tracker's own verdicts: which tracks were confirmed, and each one's majority class
        confirmed = {e["track"] for e in events if e["event"] == "confirmed"}
        confirmed_class = {e["track"]: e["class_id"] for e in events if e["event"] == "confirmed"}
        track_class = {e["track"]: e["class_id"] for e in events if e["event"] == "ended"}
        totals["class_changes"] += sum(track_class[t] != c for t, c in confirmed_class.items())
        truth_class: dict[int, int] = {}
        truth_frames: dict[int, int] = defaultdict(int)
        overlaps: dict[int, set[int]] = defaultdict(set)  # predicted track -> truth tracks it overlaps
        for found, ids, truth, truth_ids in per_frame:
            for c, t in zip(truth.class_ids, truth_ids, strict=True):
                truth_class[int(t)] = int(c)
                truth_frames[int(t)] += 1
            if len(found) and len(truth):
                overlap = box_iou(found.boxes, truth.boxes)
                for i, j in np.argwhere(overlap >= 0.3):
                    overlaps[int(ids[i])].add(int(truth_ids[j]))
            hit = match_count(found, truth)
            keep = np.array([int(t) in confirmed for t in ids], bool)
            totals["detections"] += len(found)
            totals["false_positives"] += int((~hit).sum())
            totals["false_positives_confirmed"] += int((~hit & keep).sum())
            totals["true_positives"] += int(hit.sum())
            totals["true_positives_confirmed"] += int((hit & keep).sum())
        found_signs: dict[int, int] = defaultdict(int)
        totals["merges"] += sum(len(overlaps[t]) >= 2 for t in confirmed)
        for t in confirmed:
            right = [g for g in overlaps[t] if truth_class[g] == track_class[t]]
            if not right:
                totals["false_events"] += 1
            for g in right[:1]:
                found_signs[g] += 1
        totals["labelled_signs"] += len(truth_class)
        totals["labelled_signs_k"] += sum(n >= config.confirm_hits for n in truth_frames.values())
        totals["signs_found_k"] += sum(truth_frames[g] >= config.confirm_hits for g in found_signs)
        totals["events"] += len(confirmed)
        totals["signs_found"] += len(found_signs)
        totals["duplicates"] += sum(n - 1 for n in found_signs.values())
        totals["recordings"] += 1
        totals["frames"] += len(per_frame)
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="split folders (images/, labels/)")
    parser.add_argument("--confirm", nargs="+", default=["1/1", "2/3", "3/5"], help="K/N settings to compare")
    parser.add_argument("--repeat", type=int, default=1, help="feed each frame this many times")
    parser.add_argument("--conf", type=float, default=0.25)
    args = parser.parse_args()
    detector = Detector(args.model, conf=args.conf)
    print(
        f"model {args.model.name}, frames of {', '.join(str(p) for p in args.images)}, repeat {args.repeat}, "
        f"conf {args.conf}"
    )
    header = (
        "k/n",
        "recordings",
        "frames",
        "labelled signs",
        "in >= k frames",
        "events",
        "signs found",
        "found of those in >= k",
        "false events",
        "duplicates",
        "merges",
        "class changes",
        "FP/frame all",
        "FP/frame confirmed",
        "TP kept",
    )
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for setting in args.confirm:
        k, n = (int(v) for v in setting.split("/"))
        t = evaluate(detector, args.images, TrackerConfig(confirm_hits=k, confirm_window=n), args.repeat)
        print(
            f"| {setting} | {t['recordings']} | {t['frames']} | {t['labelled_signs']} | {t['labelled_signs_k']} | "
            f"{t['events']} | {t['signs_found']} | {t['signs_found_k']} | {t['false_events']} | {t['duplicates']} | "
            f"{t['merges']} | {t['class_changes']} | "
            f"{t['false_positives'] / t['frames']:.3f} | {t['false_positives_confirmed'] / t['frames']:.3f} | "
            f"{t['true_positives_confirmed']}/{t['true_positives']} |"
        )


if __name__ == "__main__":
    main()

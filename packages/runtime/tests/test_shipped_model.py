"""The shipped model (models/pretrained/) works out of the box with only the runtime installed:
it finds a good part of the sample's labelled signs, its ONNX and TFLite files agree, and the README's detect
line writes an annotated video and JSON lines."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bienbao.runtime import Detector
from bienbao.runtime.postprocess import box_iou

PRETRAINED = Path(__file__).resolve().parents[3] / "models/pretrained"
INT8_ONNX = PRETRAINED / "yolov8n-vn-signs-int8-onnxruntime.onnx"
INT8_TFLITE = PRETRAINED / "yolov8n-vn-signs-int8.tflite"
INT8_OPENVINO = PRETRAINED / "yolov8n-vn-signs-int8-openvino-384x640.xml"
CLIP = Path(__file__).resolve().parents[3] / "datasets/vn-signs-sample.mp4"
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
HAS_LITERT = bool(importlib.util.find_spec("ai_edge_litert") or importlib.util.find_spec("tflite_runtime"))


def _labels(image: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        [float(v) for v in line.split()]
        for line in (image.parents[1] / "labels" / f"{image.stem}.txt").read_text().splitlines()
        if line.strip()
    ]
    boxes = [r for r in rows if len(r) == 5]
    classes = np.array([int(r[0]) for r in boxes])
    xywh = np.array([r[1:] for r in boxes]).reshape(-1, 4) * [width, height, width, height]
    return classes, np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)


def _found(detections, classes: np.ndarray, boxes: np.ndarray) -> int:
    found = 0
    for cls, box in zip(classes, boxes, strict=True):
        same = detections.boxes[detections.class_ids == cls]
        found += bool(len(same)) and bool(box_iou(box[None], same).max() >= 0.5)
    return found


def test_the_int8_file_carries_its_metadata(sample_data) -> None:
    meta = Detector(INT8_ONNX).backend.metadata
    names = next(x for x in sample_data.read_text().splitlines() if x.startswith("names:"))
    assert list(meta.names) == [n.strip().strip("'\"") for n in names.split("[", 1)[1].rsplit("]", 1)[0].split(",")]
    assert meta.quantization.target == "onnxruntime" and meta.quantization.activations.startswith("uint8")
    assert meta.imgsz == (640, 640)


def test_the_int8_file_finds_most_labelled_signs_on_unseen_frames(sample_frames) -> None:
    detector = Detector(INT8_ONNX, conf=0.25)
    found = total = false_positives = 0
    for image in sample_frames:
        frame = cv2.imread(str(image))
        classes, boxes = _labels(image, frame.shape[1], frame.shape[0])
        detections = detector.detect(frame)
        hit = _found(detections, classes, boxes)
        found, total, false_positives = found + hit, total + len(classes), false_positives + len(detections) - hit
    # measured: the shipped INT8 file finds 29 of the 71 boxed signs on these 32 frames at conf 0.25
    # (its test-split recall is about 0.40: many signs are under 10 px); a model that regressed, or
    # an export that broke its numerics (a wrong scale finds nothing), falls well below
    assert total > 60
    assert found / total >= 0.3, f"found {found} of {total}"
    assert false_positives <= total // 2, f"{false_positives} detections match no labelled sign"


@pytest.mark.skipif(not HAS_LITERT, reason="no LiteRT interpreter (ai-edge-litert or tflite-runtime) installed")
def test_the_tflite_file_agrees_with_the_onnx_file(sample_frames, twins) -> None:
    agree, total = twins(Detector(INT8_ONNX, conf=0.25), Detector(INT8_TFLITE, conf=0.25), sample_frames)
    assert total > 20
    assert agree / total >= 0.8, f"{agree} of {total} ONNX detections have a TFLite twin"


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino (bienbao-runtime[openvino]) is not installed")
def test_the_openvino_file_carries_its_layout_and_finds_the_signs_the_onnx_file_finds(sample_frames, twins) -> None:
    """The OpenVINO IR (its own layout, 8-bit weights, 384x640) finds what the ONNX Runtime file
    finds; they are different quantizations of one FP32 model, so not every box has a twin
    (measured on a Zen4: 32 of 37 of the ONNX file's detections at conf 0.25 on these frames)."""
    openvino = Detector(INT8_OPENVINO, conf=0.25)
    quantization = openvino.metadata.quantization
    assert openvino.backend.name == "openvino" and openvino.input_size == (384, 640)
    assert quantization.target == "openvino" and quantization.weight_bits == 8
    agree, total = twins(Detector(INT8_ONNX, conf=0.25), openvino, sample_frames)
    assert total > 20
    assert agree / total >= 0.75, f"{agree} of {total} ONNX detections have an OpenVINO twin"


def test_the_readme_detect_line_writes_an_annotated_video_and_json_lines(tmp_path) -> None:
    video, jsonl = tmp_path / "out/signs.mp4", tmp_path / "out/signs.jsonl"
    (tmp_path / "out").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "detect",
            str(INT8_ONNX),
            "--source",
            str(CLIP),
            "--headless",
            "--every-frame",
            "--save-video",
            str(video),
            "--jsonl",
            str(jsonl),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    capture = cv2.VideoCapture(str(CLIP))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert len(lines) == frames == 160
    assert sum(len(line["detections"]) for line in lines) > 100  # signs in most frames
    written = cv2.VideoCapture(str(video))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    written.release()


def test_jsonl_creates_its_folder_like_the_video_does(tmp_path) -> None:
    jsonl = tmp_path / "new/folder/signs.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "detect",
            str(INT8_ONNX),
            "--source",
            str(CLIP),
            "--headless",
            "--every-frame",
            "--max-frames",
            "3",
            "--jsonl",
            str(jsonl),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(jsonl.read_text().splitlines()) == 3

"""Rectangular inputs: a 16:9 export carries its size, runs on ONNX Runtime and OpenVINO alike on
real dashcam frames, and finds what the square file finds with 40 % fewer input pixels."""

from __future__ import annotations

import importlib.util

import cv2
import pytest

from bienbao.runtime import Detector
from bienbao.runtime.postprocess import box_iou
from bienbao.trainer.export import ExportError, export_onnx
from bienbao.trainer.sizes import input_size, parse_aspect, rect_size

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


def test_sizes_from_a_camera_aspect() -> None:
    assert rect_size(640) == (384, 640) and rect_size(832) == (480, 832) and rect_size(960) == (544, 960)
    assert rect_size(640, (4, 3)) == (480, 640) and rect_size(640, (9, 16)) == (640, 384)  # portrait
    assert input_size(640) == (640, 640) and input_size([384, 640]) == (384, 640)
    assert parse_aspect("16:9") == (16, 9)
    for bad in (630, (384, 630), (384,), (0, 640), True):
        with pytest.raises(ValueError, match="imgsz"):
            input_size(bad)
    with pytest.raises(ValueError, match="width:height"):
        parse_aspect("16x9")


@pytest.fixture(scope="module")
def files(tmp_path_factory, ptq_checkpoint):
    folder = tmp_path_factory.mktemp("rect")
    checkpoint = ptq_checkpoint(640)
    return {
        "checkpoint": checkpoint,
        "square": export_onnx(checkpoint, folder, "onnxruntime", imgsz=640).path,
        "rect": export_onnx(checkpoint, folder, "onnxruntime", imgsz=rect_size(640)).path,
    }


def test_the_rect_file_carries_its_size(files) -> None:
    detector = Detector(files["rect"])
    assert files["rect"].name.endswith("_onnxruntime_384x640.onnx")
    assert detector.input_size == (384, 640) and detector.backend.metadata.imgsz == (384, 640)
    with pytest.raises(ExportError, match="multiple of 32"):
        export_onnx(files["checkpoint"], files["rect"].parent, imgsz=(360, 640))


def _agreement(first: Detector, second: Detector, frames) -> tuple[int, int]:
    agree = total = 0
    for image in frames:
        frame = cv2.imread(str(image))
        assert frame.shape[:2] == (360, 640)  # the sample's dashcam frames are 16:9
        a, b = first.detect(frame), second.detect(frame)
        total += len(a)
        for cls, box in zip(a.class_ids, a.boxes, strict=True):
            same = b.boxes[b.class_ids == cls]
            agree += bool(len(same)) and bool(box_iou(box[None], same).max() >= 0.5)
    return agree, total


def test_the_rect_file_finds_what_the_square_file_finds(files, valid_frames) -> None:
    # the same weights and ranges; only the grey padding differs (12 rows instead of 140)
    agree, total = _agreement(Detector(files["square"], conf=0.25), Detector(files["rect"], conf=0.25), valid_frames)
    assert total > 5 and agree / total >= 0.7, f"{agree} of {total}"


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino (bienbao-runtime[openvino]) is not installed")
def test_openvino_runs_the_rect_file_like_onnx_runtime(files, valid_frames) -> None:
    ort, ov = Detector(files["rect"], conf=0.25), Detector(files["rect"], backend="openvino", conf=0.25)
    assert ov.input_size == (384, 640) and ov.backend.metadata == ort.backend.metadata
    agree, total = _agreement(ort, ov, valid_frames)
    assert total > 5 and agree / total >= 0.8, f"{agree} of {total}"

"""Fixtures: real dashcam frames of the embedded sample, a small real ONNX model, and the helpers
the live-loop, fault, live-view and MQTT tests share (a camera that drops, a frame counter, a
polling wait)."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bienbao.runtime import ModelMetadata
from bienbao.runtime.metadata import METADATA_KEY, Quantization


@pytest.fixture(scope="session")
def twins():
    """``count(a, b, frames) -> (agreeing, total)``: how many of detector ``a``'s detections on the
    frames (image paths) detector ``b`` also makes (same class, IoU >= 0.5), of how many."""
    import cv2

    from bienbao.runtime.postprocess import box_iou

    def count(a, b, frames) -> tuple[int, int]:
        agree = total = 0
        for image in frames:
            frame = cv2.imread(str(image))
            first, second = a.detect(frame), b.detect(frame)
            total += len(first)
            for cls, box in zip(first.class_ids, first.boxes, strict=True):
                same = second.boxes[second.class_ids == cls]
                agree += bool(len(same)) and bool(box_iou(box[None], same).max() >= 0.5)
        return agree, total

    return count


@pytest.fixture(scope="session")
def real_frames(sample_frames) -> list[np.ndarray]:
    import cv2

    return [cv2.imread(str(p)) for p in sample_frames[:4]]


NAMES = ("cam-re-trai", "cam-re-phai")
BOXES = np.array([[[100, 300], [100, 300], [40, 20], [20, 40]]], np.float32)  # (1, 4, 2): cx, cy, w, h


def _brightness_model(
    path, with_metadata: bool = True, size: int = 320, quantization: Quantization | None = None
) -> str:
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),  # (1, 1, 1, 1)
        helper.make_node("Reshape", ["mean", "shape"], ["mean3"]),  # (1, 1, 1)
        helper.make_node("Expand", ["mean3", "score_shape"], ["scores"]),  # (1, 2, 2)
        helper.make_node("Mul", ["scores", "class_weights"], ["weighted"]),
        helper.make_node("Concat", ["boxes", "weighted"], ["output0"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([1, 2, 2], np.int64), "score_shape"),
        numpy_helper.from_array(np.array([[[1.0], [0.5]]], np.float32), "class_weights"),  # class 0 wins
        numpy_helper.from_array(BOXES, "boxes"),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 2])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if with_metadata:
        meta = ModelMetadata(names=NAMES, imgsz=(size, size), quantization=quantization or Quantization("fp32"))
        model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def brightness_model():
    """``brightness_model(path, with_metadata=True, size=320, quantization=None)``: a real ONNX model
    whose class scores are the input's mean brightness (class 0 weighted 1, class 1 weighted 0.5)
    and whose two boxes are fixed."""
    return _brightness_model


_brightness_model.names = NAMES
_brightness_model.boxes = BOXES


@pytest.fixture
def sign_video(tmp_path, real_frames):
    """``sign_video(frames=60, fps=30)``: an mp4 made of real dashcam frames."""
    import cv2

    def make(frames: int = 60, fps: int = 30):
        path = tmp_path / f"signs_{frames}.mp4"
        height, width = real_frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        for index in range(frames):
            writer.write(real_frames[index % len(real_frames)])
        writer.release()
        return path

    return make


class DroppingCamera:
    """A real OpenCV capture of a video that stops delivering after ``fail_after`` frames (a camera
    unplugged mid-stream); ``None``: never."""

    def __init__(self, path, fail_after: int | None) -> None:
        import cv2

        self.capture, self.fail_after, self.reads = cv2.VideoCapture(str(path)), fail_after, 0

    def read(self):
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            return False, None
        return self.capture.read()

    def get(self, prop):
        return self.capture.get(prop)

    def release(self):
        self.capture.release()


@pytest.fixture
def dropping_camera():
    """``dropping_camera(path, fail_after)``: see ``DroppingCamera``."""
    return DroppingCamera


def _count_frames(path) -> int:
    import cv2

    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture
def count_frames():
    """``count_frames(path)``: how many frames OpenCV reads from a video file (0: it does not play)."""
    return _count_frames


def _wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@pytest.fixture
def wait_for():
    """``wait_for(condition, timeout=20)``: poll until ``condition()`` is true; whether it became so."""
    return _wait_for

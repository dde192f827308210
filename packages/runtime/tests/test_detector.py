"""The Detector with the real ONNX Runtime backend, on a small ONNX model built here.

The model's class scores are the mean brightness of the input and its boxes are fixed, so the
whole chain (letterbox, ONNX Runtime, decoding, NMS, mapping back to the frame) has an exact answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from bienbao.runtime import Detector, MissingDependencyError, run_stages
from bienbao.runtime.backends import load_backend


def test_a_bright_frame_gives_the_fixed_boxes_in_frame_pixels(tmp_path, brightness_model) -> None:
    detector = Detector(brightness_model(tmp_path / "m.onnx"), conf=0.5, threads=1)
    assert detector.names == brightness_model.names and detector.input_size == (320, 320)
    frame = np.full((360, 640, 3), 255, np.uint8)  # letterboxed: gain 0.5, 70 px of padding on top
    found = detector.detect(frame)
    assert found.class_ids.tolist() == [0, 0] and found.labels == ["cam-re-trai", "cam-re-trai"]
    padding_mean = (360 * 640 * 255 * 0.5**2 + (320 * 320 - 180 * 320) * 114) / (320 * 320 * 255)
    assert np.allclose(found.scores, padding_mean, atol=1e-3)
    cx, cy, w, h = brightness_model.boxes[0]
    expected = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)  # network xyxy
    expected[:, [1, 3]] -= 70  # top padding
    expected /= 0.5  # gain
    expected = np.clip(expected, 0, [640, 360, 640, 360])  # the second box falls below the frame
    assert np.allclose(found.boxes[np.argsort(found.boxes[:, 0])], expected, atol=1e-3)


def test_run_stages_is_detect_with_each_stage_timed(tmp_path, brightness_model) -> None:
    detector = Detector(brightness_model(tmp_path / "m.onnx"), conf=0.5, threads=1)
    frame = np.full((360, 640, 3), 255, np.uint8)
    found, seconds = detector.detect_timed(frame)
    assert np.array_equal(found.boxes, detector.detect(frame).boxes) and len(seconds) == 3
    assert all(s > 0 for s in seconds)
    # any callable can stand in for a backend: here the backend itself, with every class kept
    same, _ = run_stages(detector.backend.infer, frame, (320, 320), detector.names, 0.5, 0.45, 300, multi_label=True)
    assert np.array_equal(same.boxes, found.boxes) and same.labels == found.labels


def test_a_dark_frame_gives_an_empty_result_of_stable_shape(tmp_path, brightness_model) -> None:
    detector = Detector(brightness_model(tmp_path / "m.onnx"), conf=0.5)
    found = detector.detect(np.zeros((480, 640, 3), np.uint8))
    assert len(found) == 0 and found.boxes.shape == (0, 4)
    batch = detector.detect_batch([np.zeros((100, 50, 3), np.uint8), np.full((50, 100, 3), 255, np.uint8)])
    assert [len(d) for d in batch] == [0, 2]


def test_a_file_without_metadata_needs_names(tmp_path, brightness_model) -> None:
    path = brightness_model(tmp_path / "plain.onnx", with_metadata=False)
    with pytest.raises(ValueError, match="not a bienbao export.*names="):
        Detector(path)
    detector = Detector(path, names=["a", "b"], conf=0.1)
    assert detector.detect(np.full((64, 64, 3), 200, np.uint8)).labels == ["a", "a"]
    with pytest.raises(ValueError, match="different ones"):
        Detector(brightness_model(tmp_path / "m.onnx"), names=["a", "b"])


def test_bad_inputs_are_named(tmp_path, brightness_model) -> None:
    with pytest.raises(FileNotFoundError, match="model file not found"):
        Detector(tmp_path / "missing.onnx")
    path = brightness_model(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend("nosuch", path)
    with pytest.raises(ValueError, match="cannot tell the backend"):
        load_backend("auto", __file__)
    with pytest.raises(ValueError, match="CUDAExecutionProvider"):
        load_backend("onnxruntime", path, providers=["CUDAExecutionProvider"])
    with pytest.raises(ValueError, match="conf"):
        Detector(path, conf=1.5)


def test_tensorrt_backend_names_what_to_install(tmp_path, brightness_model) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    with pytest.raises(MissingDependencyError, match=r"come with JetPack.*apt install python3-libnvinfer"):
        load_backend("auto", engine)

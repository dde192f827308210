"""The OpenVINO backend on the shipped files: metadata through OpenVINO's rt_info, the same
detections as ONNX Runtime on real frames (FP32 and INT8), the backend options, clear refusals."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bienbao.runtime import Detector
from bienbao.runtime.backends import backend_label, split_options

pytest.importorskip("openvino", reason="openvino (bienbao-runtime[openvino]) is not installed")

ROOT = Path(__file__).resolve().parents[3]
INT8_ONNX = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"


def test_the_metadata_comes_through_openvino(fp32_weights) -> None:
    ort, ov = Detector(INT8_ONNX), Detector(INT8_ONNX, backend="openvino")
    assert ov.names == ort.names and len(ov.names) == 33 and ov.input_size == ort.input_size == (640, 640)
    assert ov.backend.metadata == ort.backend.metadata
    assert backend_label(ov.backend).startswith("openvino (CPU, ")  # the precision it runs in is reported


def test_openvino_finds_what_onnx_runtime_finds_on_real_frames(sample_frames, twins) -> None:
    # measured here (AMD EPYC Zen3, AVX2): 48 of 51 INT8 detections have an OpenVINO twin; its INT8 kernels
    # round differently from ONNX Runtime's, so a few low-score boxes near the threshold differ
    agree, total = twins(
        Detector(INT8_ONNX, conf=0.25), Detector(INT8_ONNX, backend="openvino", conf=0.25), sample_frames
    )
    assert total > 20 and agree / total >= 0.8, f"{agree} of {total}"


def raw_difference(sample_frames, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """|OpenVINO - ONNX Runtime| of the raw outputs on a real frame: box pixels, sigmoid scores."""
    from bienbao.runtime import preprocess

    tensor, _ = preprocess(cv2.imread(str(sample_frames[0])), (640, 640))
    ort = Detector(INT8_ONNX).backend.infer(tensor)
    backend = Detector(INT8_ONNX, backend="openvino", precision=precision).backend
    if backend.precision != precision:
        pytest.skip(f"OpenVINO runs {backend.precision}, not {precision}, on this CPU")
    ov = backend.infer(tensor)
    assert ov.shape == ort.shape == (1, 37, 8400) and ov.dtype == np.float32
    return np.abs(ov[:, :4] - ort[:, :4]), np.abs(ov[:, 4:] - ort[:, 4:])


def test_the_raw_outputs_are_close_on_a_real_frame_in_f32(sample_frames) -> None:
    """f32 pinned: what is left is the integer kernels' rounding of a few requantizations (measured
    on Zen3 and Zen4: median box difference well under a pixel)."""
    boxes, scores = raw_difference(sample_frames, "f32")
    assert np.median(boxes) < 1.0 and scores.max() < 0.15  # pixels; sigmoid scores


def test_the_raw_outputs_in_bf16_are_within_bf16_rounding(sample_frames) -> None:
    """bf16, OpenVINO's default on CPUs with AVX512-BF16 or AMX, keeps 8 significant bits: the box
    decoding of a 640-pixel input then rounds coordinates to 2**-8 of their size (up to 2.5 px),
    before the requantizations the f32 test allows for. Measured on a Zen4: median 1.37 px."""
    boxes, scores = raw_difference(sample_frames, "bf16")
    assert np.median(boxes) < 1.0 + 640 * 2**-8 and scores.max() < 0.15


def test_threads_and_precision_are_openvino_options(tmp_path) -> None:
    assert split_options("openvino", INT8_ONNX, {"threads": 2}) == ({"threads": 2}, [])
    backend = Detector(INT8_ONNX, backend="openvino", threads=1, precision="f32").backend
    assert backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1 and backend.precision in ("f32", "float32")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(INT8_ONNX.read_bytes()[:100000])
    with pytest.raises(ValueError, match="not a model OpenVINO can load"):
        Detector(truncated, backend="openvino")


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="write one of f32, bf16, f16"):
        Detector(INT8_ONNX, backend="openvino", precision="fp8")


@pytest.fixture(scope="module")
def ultralytics_ir(tmp_path_factory) -> Path:
    """An OpenVINO IR folder laid out as ultralytics' ``export(format="openvino")`` writes it
    (``<name>_openvino_model/<name>.xml`` + ``.bin`` + ``metadata.yaml``, no bienbao metadata),
    made here from the shipped INT8 file."""
    import json

    import onnx
    import openvino as ov
    import yaml

    from bienbao.runtime.metadata import METADATA_KEY

    work = tmp_path_factory.mktemp("ir")
    graph = onnx.load(str(INT8_ONNX))
    meta = json.loads({p.key: p.value for p in graph.metadata_props}[METADATA_KEY])
    del graph.metadata_props[:]  # a foreign file: no bienbao metadata
    onnx.save(graph, str(work / "plain.onnx"))
    folder = work / "signs_int8_openvino_model"
    folder.mkdir()
    ov.save_model(ov.convert_model(str(work / "plain.onnx")), str(folder / "signs.xml"), compress_to_fp16=False)
    (folder / "metadata.yaml").write_text(
        yaml.safe_dump(
            {
                "description": "Ultralytics YOLOv8n model",
                "version": "8.4.190",
                "stride": 32,
                "task": "detect",
                "imgsz": list(meta["imgsz"]),
                "names": dict(enumerate(meta["names"])),
                "args": {"int8": True},
            }
        )
    )
    return folder


def test_an_ultralytics_ir_folder_runs_with_its_metadata_yaml(ultralytics_ir, sample_frames, twins) -> None:
    from bienbao.runtime.backends import backend_for_path

    assert (
        backend_for_path(ultralytics_ir) == "openvino" and backend_for_path(ultralytics_ir / "signs.xml") == "openvino"
    )
    folder, onnx = Detector(ultralytics_ir, precision="f32"), Detector(INT8_ONNX, backend="openvino", precision="f32")
    assert folder.metadata is not None and folder.metadata.producer == "ultralytics 8.4.190"
    assert folder.names == onnx.names and folder.input_size == onnx.input_size == (640, 640)
    quantization = folder.metadata.quantization
    assert quantization.target == "openvino" and quantization.quantized_layers == 61  # read off the graph
    assert Detector(ultralytics_ir / "signs.xml").names == onnx.names
    agree, total = twins(onnx, folder, sample_frames)
    # the same graph through OpenVINO's ONNX reader and through an IR: measured 36 of 38 twins on a Zen4 (the
    # two paths transform the graph a little differently, and boxes near the threshold move)
    assert total > 20 and agree / total >= 0.9, f"{agree} of {total}"


def test_ir_folders_that_do_not_fit_are_named(ultralytics_ir, tmp_path) -> None:
    from bienbao.runtime.metadata import MetadataError

    broken = tmp_path / "broken_openvino_model"
    broken.mkdir()
    for part in ("signs.xml", "signs.bin"):
        (broken / part).write_bytes((ultralytics_ir / part).read_bytes())
    (broken / "metadata.yaml").write_text("names: [a, b]\n")  # no imgsz
    with pytest.raises(MetadataError, match="not an ultralytics metadata file"):
        Detector(broken)
    (broken / "second.xml").write_bytes(b"<net/>")
    with pytest.raises(ValueError, match="holds one .xml file"):
        Detector(broken)
    plain = tmp_path / "frames"
    plain.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        Detector(plain)

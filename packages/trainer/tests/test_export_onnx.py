"""ONNX export: metadata round trip, Q/DQ structure per target, int8 weights, refusals, parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from bienbao.runtime.metadata import METADATA_KEY, MetadataError, ModelMetadata
from bienbao.trainer.config import CalibrationConfig, load_train_config
from bienbao.trainer.export import ExportError, export_onnx
from bienbao.trainer.export.onnx_export import prepare_for_export
from bienbao.trainer.ptq import run_ptq

REPO = Path(__file__).resolve().parents[3]
IMGSZ = 160


def ptq_checkpoint(workdir: Path, data: Path, weights: Path, policy: str) -> Path:
    train = load_train_config(REPO / "configs/base.yaml", {"data": str(data), "imgsz": IMGSZ, "workers": 0})
    return run_ptq(train, str(weights), policy, CalibrationConfig(batches=1, batch_size=4), name=Path(policy).stem)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_data, fp32_weights) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export")
    cwd = Path.cwd()
    import os

    os.chdir(folder)
    try:
        ort_ckpt = ptq_checkpoint(folder, tiny_data, fp32_weights, str(REPO / "configs/quantization.yaml"))
        trt_ckpt = ptq_checkpoint(folder, tiny_data, fp32_weights,
                                  str(REPO / "configs/experiments/exp1_symmetric_quant.yaml"))
        return {
            "ort_ckpt": folder / ort_ckpt, "trt_ckpt": folder / trt_ckpt,
            "onnxruntime": export_onnx(ort_ckpt, folder / "onnx", "onnxruntime", imgsz=IMGSZ).path,
            "tensorrt": export_onnx(trt_ckpt, folder / "onnx", "tensorrt", imgsz=IMGSZ).path,
            "fp32": export_onnx(fp32_weights, folder / "onnx", "fp32", imgsz=IMGSZ).path,
        }
    finally:
        os.chdir(cwd)


def metadata_of(path: Path) -> ModelMetadata:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return ModelMetadata.from_json(props[METADATA_KEY])


def test_metadata_travels_in_the_file(exported, fp32_weights) -> None:
    meta = metadata_of(exported["onnxruntime"])
    assert len(meta.names) == 33 and meta.names[13] == "cam-re-trai"
    assert meta.imgsz == (IMGSZ, IMGSZ) and meta.stride == 32 and meta.task == "detect"
    assert meta.quantization.target == "onnxruntime"
    assert meta.quantization.activations == "uint8 asymmetric per-tensor"
    assert meta.quantization.weights == "7-bit codes in int8, per-channel"
    assert len(meta.source_sha256) == 64
    assert metadata_of(exported["tensorrt"]).quantization.activations == "int8 symmetric per-tensor"
    fp32 = metadata_of(exported["fp32"])
    assert fp32.quantization.target == "fp32" and fp32.source == str(fp32_weights)
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_metadata_refuses_unknown_versions_and_fields(exported) -> None:
    meta = metadata_of(exported["fp32"])
    with pytest.raises(MetadataError, match="schema version 2"):
        ModelMetadata.from_json(meta.to_json().replace('"schema_version": 1', '"schema_version": 2'))
    with pytest.raises(MetadataError, match="unknown metadata field"):
        ModelMetadata.from_json(meta.to_json().replace('"task"', '"tsak"'))


@pytest.mark.parametrize("target", ["onnxruntime", "tensorrt"])
def test_weights_are_int8_initializers_and_concat_inputs_share_a_scale(exported, target) -> None:
    from bienbao.trainer.export import qdq_report

    model = onnx.load(str(exported[target]))
    report = qdq_report(model)
    assert report.int8_weights == 57 and report.float_weights == 7  # the head's final convs + DFL stay float
    assert report.concats_sharing_one_scale == 13  # 8 C2f, 1 SPPF (through its max-pools), 4 neck Concats
    assert exported[target].stat().st_size <= 0.30 * exported["fp32"].stat().st_size


def test_refusals_name_the_problem(exported, fp32_weights, tmp_path) -> None:
    with pytest.raises(ExportError, match="FP32 checkpoint"):
        export_onnx(fp32_weights, tmp_path, "onnxruntime", imgsz=IMGSZ)
    with pytest.raises(ExportError, match="TensorRT needs symmetric int8"):
        export_onnx(exported["ort_ckpt"], tmp_path, "tensorrt", imgsz=IMGSZ)
    afile = tmp_path / "a_file"
    afile.write_text("")
    with pytest.raises(ExportError, match="is a file"):
        export_onnx(exported["ort_ckpt"], afile, "onnxruntime", imgsz=IMGSZ)
    with pytest.raises(ExportError, match="not found"):
        export_onnx(tmp_path / "missing.pt", tmp_path, "onnxruntime", imgsz=IMGSZ)


def test_onnx_runtime_matches_the_fake_quant_model_on_real_frames(exported, tiny_data) -> None:
    """Reference kernels (no fusion) compute what fake quant computes: same boxes and scores."""
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(exported["ort_ckpt"])
    traced = prepare_for_export(model, "onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(exported["onnxruntime"]), options, providers=["CPUExecutionProvider"])
    images = sorted((tiny_data.parent / "valid" / "images").iterdir())[:2]
    import cv2

    for image in images:
        frame = cv2.resize(cv2.imread(str(image)), (IMGSZ, IMGSZ))[:, :, ::-1]
        x = np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / 255
        with torch.no_grad():
            expected = traced(torch.from_numpy(x)).numpy()
        got = session.run(None, {"images": x})[0][0]
        expected = expected[0]
        # Both run the same integer grid; float summation order can flip a rounding tie at some
        # quantizer, which moves a few outputs slightly. Almost every output is equal to float
        # rounding, and no class score moves by more than a hundredth.
        diff = np.abs(got - expected)
        assert np.median(diff) < 1e-5
        assert (diff[4:] < 1e-3).mean() > 0.999 and diff[4:].max() < 1e-2
        # the 20 strongest candidates: same anchors, same classes, boxes within IoU 0.9
        top_expected = np.argsort(-expected[4:].max(0))[:20]
        top_got = np.argsort(-got[4:].max(0))[:20]
        assert len(set(top_expected) & set(top_got)) >= 19
        assert np.array_equal(expected[4:, top_expected].argmax(0), got[4:, top_expected].argmax(0))
        assert iou_xywh(expected[:4, top_expected], got[:4, top_expected]).min() > 0.9


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching columns of two (4, N) arrays of (cx, cy, w, h) boxes."""
    def corners(box):
        return box[0] - box[2] / 2, box[1] - box[3] / 2, box[0] + box[2] / 2, box[1] + box[3] / 2
    ax1, ay1, ax2, ay2 = corners(a)
    bx1, by1, bx2, by2 = corners(b)
    inter = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None) * \
        np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)

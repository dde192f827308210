"""TFLite export (litert-torch, the optional ``tflite`` extra; run by ``nox -s tflite``): int8
kernels carrying the checkpoint's own scales, metadata sidecar, refusals, and parity of the LiteRT
backend with the fake-quant model on real frames."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bienbao.trainer.export import ExportError, export_tflite

IMGSZ = 640  # parity is checked where the model is used


def test_a_missing_converter_names_the_extra(monkeypatch, tmp_path, fp32_weights) -> None:
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if not installed
    with pytest.raises(ExportError, match=r"bienbao-trainer\[tflite\]"):
        export_tflite(fp32_weights, tmp_path, "fp32", imgsz=IMGSZ)


@pytest.fixture(scope="module")
def litert():
    pytest.importorskip("litert_torch", reason="litert-torch is the optional tflite extra: nox -s tflite")
    return pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert comes with litert-torch")


@pytest.fixture(scope="module")
def exported(litert, ptq_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """The packaged policy (model.0/model.1 float: the image enters as float) and the all-integer
    one (exp0: the image enters as int8 on the first conv's own grid)."""
    ckpt = ptq_checkpoint(IMGSZ, batches=2)
    all_integer = ptq_checkpoint(IMGSZ, "experiments/exp0_all_integer.yaml", batches=2)
    folder = tmp_path_factory.mktemp("tflite")
    return {
        "ckpt": ckpt,
        "int8": export_tflite(ckpt, folder, "int8", imgsz=IMGSZ).path,
        "all_integer_ckpt": all_integer,
        "all_integer": export_tflite(all_integer, folder, "int8", imgsz=IMGSZ).path,
    }


def _per_channel_int8(interpreter) -> list[dict]:
    tensors = interpreter.get_tensor_details()
    return [t for t in tensors if t["dtype"] == np.int8 and len(t["quantization_parameters"]["scales"]) > 1]


def test_int8_kernels_carry_the_checkpoints_own_scales(exported, litert) -> None:
    from ultralytics.nn.tasks import load_checkpoint

    interpreter = litert.Interpreter(str(exported["all_integer"]))
    interpreter.allocate_tensors()
    assert len(_per_channel_int8(interpreter)) == 63  # every conv's weights (the DFL is not a learned conv)
    model, _ = load_checkpoint(exported["all_integer_ckpt"])
    first = model.model[0].conv.input_quantizer  # the image's quantizer: uint8 grid, written as int8
    (image,) = interpreter.get_input_details()
    assert image["dtype"] == np.int8 and tuple(image["shape"]) == (1, 3, IMGSZ, IMGSZ)
    scale, zero_point = image["quantization"]
    assert scale == pytest.approx(first.scale.item(), rel=1e-6) and zero_point == int(first.zero_point) - 128
    (output,) = interpreter.get_output_details()
    assert output["dtype"] == np.float32  # the decode tail is float: pixels and scores never share a scale
    assert exported["all_integer"].stat().st_size < 0.3 * 12.5e6  # int8 weights (the FP32 ONNX is 12.6 MB)


def test_the_packaged_policy_keeps_its_float_stem_in_the_file(exported, litert) -> None:
    """model.0 and model.1 stay float by policy: two float convs, the image enters as float32, and
    the first integer conv (model.2.cv1) quantizes with the checkpoint's own input scale."""
    from ultralytics.nn.tasks import load_checkpoint

    interpreter = litert.Interpreter(str(exported["int8"]))
    interpreter.allocate_tensors()
    per_channel = _per_channel_int8(interpreter)
    assert len(per_channel) == 61
    (image,) = interpreter.get_input_details()
    assert image["dtype"] == np.float32 and tuple(image["shape"]) == (1, 3, IMGSZ, IMGSZ)
    model, _ = load_checkpoint(exported["ckpt"])
    assert not hasattr(model.model[0].conv, "input_quantizer") and not hasattr(model.model[1].conv, "input_quantizer")
    entry = model.model[2].cv1.conv.input_quantizer
    per_tensor = [
        float(t["quantization_parameters"]["scales"][0])
        for t in interpreter.get_tensor_details()
        if t["dtype"] == np.int8 and len(t["quantization_parameters"]["scales"]) == 1
    ]
    assert any(abs(scale / entry.scale.item() - 1) < 1e-6 for scale in per_tensor)


def test_metadata_travels_in_a_sidecar(exported, fp32_weights) -> None:
    from bienbao.runtime.metadata import ModelMetadata

    meta = ModelMetadata.read_sidecar(exported["int8"])
    assert meta.quantization.target == "tflite" and meta.imgsz == (IMGSZ, IMGSZ) and len(meta.names) == 33
    assert meta.quantization.activations == "int8 asymmetric per-tensor"
    assert meta.source == str(exported["ckpt"]) and len(meta.source_sha256) == 64


def test_refusals_name_the_problem(litert, fp32_weights, tmp_path) -> None:
    with pytest.raises(ExportError, match="FP32 checkpoint"):
        export_tflite(fp32_weights, tmp_path, "int8", imgsz=IMGSZ)
    with pytest.raises(ExportError, match="target 'uint8'"):
        export_tflite(fp32_weights, tmp_path, "uint8", imgsz=IMGSZ)
    afile = tmp_path / "a_file"
    afile.write_text("")
    with pytest.raises(ExportError, match="is a file"):
        export_tflite(fp32_weights, afile, "fp32", imgsz=IMGSZ)


@pytest.mark.parametrize("which", ["int8", "all_integer"])
def test_litert_matches_the_fake_quant_model_on_real_frames(exported, which, valid_frames, agreeing_detections) -> None:
    """The LiteRT backend (XNNPACK int8 kernels, fixed-point requantization, table-driven sigmoid)
    against the fake-quant model on 40 real frames at 640: looser than ONNX Runtime, as measured
    (about 85% of boxes have a twin of the same class with IoU > 0.9; scores agree to 1e-5 median)."""
    import cv2
    from ultralytics.nn.tasks import load_checkpoint

    from bienbao.runtime.backends import load_backend
    from bienbao.runtime.preprocess import preprocess
    from bienbao.trainer.export.onnx_export import prepare_for_export

    model, _ = load_checkpoint(exported["ckpt" if which == "int8" else "all_integer_ckpt"])
    traced = prepare_for_export(model, "onnxruntime")
    backend = load_backend("auto", exported[which], threads=2)
    assert backend.name == "litert" and backend.input_size == (IMGSZ, IMGSZ)
    matched = total = 0
    for image in valid_frames:
        x = preprocess(cv2.imread(str(image)), backend.input_size)[0]
        with torch.no_grad():
            expected = traced(torch.from_numpy(x))
        got = torch.from_numpy(backend.infer(x))
        assert (got - expected)[0, 4:].abs().median() < 1e-4  # class scores
        agreeing, found = agreeing_detections(expected, got)
        matched, total = matched + agreeing, total + found
    print(f"detections agreeing: {matched}/{total}")
    assert total >= 5, "the FP32-derived model should find some signs in these frames"
    assert matched / total >= 0.75, f"{matched}/{total} detections agree"


def test_bienbao_detect_runs_the_tflite_file_on_a_video(exported, valid_frames, tmp_path) -> None:
    import json
    import subprocess

    import cv2

    video = tmp_path / "drive.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 360))
    for image in valid_frames[:12]:
        writer.write(cv2.resize(cv2.imread(str(image)), (640, 360)))
    writer.release()
    jsonl = tmp_path / "detections.jsonl"
    command = [
        sys.executable,
        "-m",
        "bienbao.cli",
        "detect",
        str(exported["int8"]),
        "--source",
        str(video),
        "--headless",
        "--every-frame",
        "--jsonl",
        str(jsonl),
        "--threads",
        "2",
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 12 and "(litert," in done.stderr
    assert sum(len(line["detections"]) for line in lines) > 0

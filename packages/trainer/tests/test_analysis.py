"""``bienbao compare`` and ``bienbao analyze``: report files with the models' real figures, layer
error numerics, a sensitivity policy that ``bienbao qat`` accepts, histograms and the drift chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.evaluation.analyze import (
    activation_histograms,
    drift_chart,
    layer_error,
    layer_sensitivity,
    read_drift,
    sample_frames,
    sensitivity_policy,
)
from bienbao.trainer.evaluation.compare import compare, parse_model_spec
from bienbao.trainer.evaluation.evaluate import evaluate

REPO = Path(__file__).resolve().parents[3]
IMGSZ = 160


@pytest.fixture(scope="module")
def models(ptq_checkpoint, fp32_weights, tmp_path_factory) -> dict[str, Path]:
    from bienbao.trainer.export import export_onnx

    ptq = ptq_checkpoint(IMGSZ)
    onnx = export_onnx(ptq, tmp_path_factory.mktemp("onnx"), "onnxruntime", imgsz=IMGSZ).path
    return {"fp32": fp32_weights, "ptq": ptq, "ptq_onnx": onnx}


def test_compare_writes_a_report_with_the_models_real_figures(models, tiny_data, tmp_path) -> None:
    specs = [("fp32", models["fp32"]), ("ptq-int8", models["ptq_onnx"])]
    compared = compare(specs, tiny_data, "val", tmp_path, imgsz=IMGSZ, examples=2, progress=lambda _: None)
    report = json.loads((tmp_path / "compare.json").read_text())
    assert [m["label"] for m in report["models"]] == ["fp32", "ptq-int8"] and report["reference"] == "fp32"
    direct = evaluate(models["ptq_onnx"], tiny_data, "val")  # the same number as bienbao evaluate gives
    assert report["models"][1]["evaluation"]["map50"] == pytest.approx(direct.map50)
    assert report["models"][1]["size_mb"] == pytest.approx(models["ptq_onnx"].stat().st_size / 1e6, abs=1e-3)
    markdown = (tmp_path / "compare.md").read_text()
    for model in compared:
        assert f"| {model.label} | {model.path.name} |" in markdown
        assert f"{model.evaluation.map50:.4f}" in markdown
    assert "ptq-int8" in (tmp_path / "compare.html").read_text()
    for chart in ("per_class_ap.png", "pr_curves.png", "latency.png"):
        assert (tmp_path / chart).stat().st_size > 5_000
    assert len(list((tmp_path / "examples").glob("*.jpg"))) == 2
    assert compared[0].evaluation.pr_curve["recall"][-1] == 1.0


def test_compare_names_checkpoints_by_their_run() -> None:
    from bienbao.trainer.evaluation.compare import _file_name

    assert _file_name(Path("models/checkpoints/qat_grid/best.pt")) == "qat_grid/best.pt"
    assert _file_name(Path("weights/vn-signs-fp32.pt")) == "vn-signs-fp32.pt"


def test_compare_refuses_what_it_cannot_compare(models, tiny_data, tmp_path) -> None:
    with pytest.raises(ValueError, match="at least two"):
        compare([("a", models["fp32"])], tiny_data, "val", tmp_path)
    with pytest.raises(ValueError, match="labels must differ"):
        compare([("a", models["fp32"]), ("a", models["ptq"])], tiny_data, "val", tmp_path)
    with pytest.raises(FileNotFoundError, match="model not found"):
        parse_model_spec(f"x={tmp_path / 'missing.onnx'}")
    assert parse_model_spec(str(models["ptq_onnx"]))[0] == models["ptq_onnx"].stem


def test_layer_error_isolates_quantization(models, tiny_data) -> None:
    frames = sample_frames(tiny_data, "train", 2, IMGSZ)
    own = layer_error(models["ptq"], frames)  # against itself with quantizers off
    against_fp32 = layer_error(models["ptq"], frames, models["fp32"])
    assert len(own) == 57 - 2 and [e.name for e in own] == [e.name for e in against_fp32]
    assert all(0 < e.sqnr_db < 80 and 0.5 < e.cosine <= 1 for e in own)
    # PTQ changes no weight: the FP32 checkpoint is the same reference, up to BN folding's rounding
    for a, b in zip(own, against_fp32, strict=True):
        assert a.sqnr_db == pytest.approx(b.sqnr_db, abs=0.2)
    assert own[0].sqnr_db > own[len(own) // 2].sqnr_db  # error accumulates with depth
    # the first quantized block (model.2.cv1: model.0 and model.1 are float by policy) reads the same
    # float input in both networks: its own error is all the error there is
    assert own[0].local_sqnr_db == pytest.approx(own[0].sqnr_db, abs=0.01)
    # deeper, a block alone is far better than the network up to it
    deep = own[len(own) // 2 :]
    assert sum(e.local_sqnr_db for e in deep) > sum(e.sqnr_db for e in deep) + 3 * len(deep)
    with pytest.raises(ValueError, match="no quantizers"):
        layer_error(models["fp32"], frames)


def test_sensitivity_writes_a_policy_that_qat_accepts(models, tiny_data, tmp_path) -> None:
    import yaml
    from torch import nn
    from ultralytics.nn.tasks import load_checkpoint

    from bienbao.trainer.config import load_policy
    from bienbao.trainer.ultralytics.qat_model import prepare_yolo_qat

    report = layer_sensitivity(
        models["ptq"],
        tiny_data,
        "val",
        images=2,
        imgsz=IMGSZ,
        layers=["model.2.cv1.conv", "model.3.conv"],
        progress=lambda _: None,
    )
    assert [layer.name for layer in report.layers] == ["model.2.cv1.conv", "model.3.conv"]
    policy_file = tmp_path / "quantization.yaml"
    policy_file.write_text(yaml.safe_dump(sensitivity_policy(CONFIGS / "quantization.yaml", report, 1)))
    worst = report.ranking()[0].name
    fp32, _ = load_checkpoint(models["fp32"])
    model = prepare_yolo_qat(fp32, load_policy(policy_file), target="onnxruntime")
    assert type(model.get_submodule(worst)) is nn.Conv2d  # kept float
    other = ({"model.2.cv1.conv", "model.3.conv"} - {worst}).pop()
    assert type(model.get_submodule(other)) is not nn.Conv2d
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64))  # and the layout still runs


def test_activation_histograms_and_drift_chart(models, tiny_data, tmp_path) -> None:
    frames = sample_frames(tiny_data, "train", 1, IMGSZ)
    png = activation_histograms(models["ptq"], frames, tmp_path / "acts.png", max_plots=8)
    assert png.stat().st_size > 20_000
    with pytest.raises(ValueError, match="no quantizer matches"):
        activation_histograms(models["ptq"], frames, tmp_path / "none.png", layers=["nothing*"])
    csv = tmp_path / "drift.csv"
    csv.write_text(
        "epoch,weights,activations,observing,bn_frozen,qat_mAP50,fp32_mAP50,qat_mAP50-95,fp32_mAP50-95\n"
        "1,True,False,True,False,0.21,0.27,0.14,0.18\n2,True,True,True,False,0.25,0.27,0.16,0.18\n"
        "3,True,True,False,True,0.28,0.27,0.19,0.18\n"
    )
    assert drift_chart(read_drift(tmp_path), tmp_path / "drift.png").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="drift.csv"):
        read_drift(tmp_path / "nowhere")


def test_analyze_cli_says_what_is_wrong(models, tiny_data, tmp_path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "analyze",
            "error",
            "--model",
            str(models["fp32"]),
            "--data",
            str(tiny_data),
            "--images",
            "1",
            "--imgsz",
            str(IMGSZ),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "no quantizers" in done.stderr and "Traceback" not in done.stderr

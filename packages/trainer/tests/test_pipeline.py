"""The main job end to end on a tiny real subset, and its resume-after-interruption."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bienbao.trainer.config import load_qat_config, load_train_config
from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.pipeline import STEPS, PipelineOptions, run_pipeline

REPO = Path(__file__).resolve().parents[3]


def test_pipeline_runs_every_step_and_resumes(workdir, tiny_data, fp32_weights, capsys) -> None:
    train = load_train_config(
        CONFIGS / "base.yaml",
        {"model": str(fp32_weights), "data": str(tiny_data), "imgsz": 96, "batch": 4, "workers": 0, "epochs": 1},
    )
    qat = load_qat_config(
        CONFIGS / "qat.yaml",
        {
            "quantization": str(CONFIGS / "quantization.yaml"),
            "epochs": 1,
            "calibration": {"batches": 1, "batch_size": 4},
        },
    )
    options = PipelineOptions(train, qat, split="val", bench_runs=2)
    report = run_pipeline(options)

    state = json.loads((workdir / "logs/pipeline/state.json").read_text())
    assert list(state) == list(STEPS)
    text = report.read_text()
    for row in ("fp32 (PyTorch)", "ptq (fake-quant)", "qat (fake-quant)", "qat (ONNX, runtime)"):
        assert f"| {row} |" in text
    evaluation = json.loads((workdir / "logs/pipeline/evaluation.json").read_text())
    assert evaluation["qat (ONNX, runtime)"]["evaluator"] == "bienbao.runtime, onnxruntime (CPUExecutionProvider)"
    bench = json.loads((workdir / "logs/pipeline/bench.json").read_text())
    assert len(bench["models"]) == 3 and bench["models"][0]["ratio_vs_first"] == 1.0

    # an interruption after "bench": the next run redoes only the report
    del state["report"]
    (workdir / "logs/pipeline/state.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert run_pipeline(options) == report
    out = capsys.readouterr().out
    assert out.count("already done") == len(STEPS) - 1 and "step 7/7 report ..." in out
    assert run_pipeline(replace(options, restart=False)) == report


def test_an_engine_for_the_uint8_layout_is_refused_before_any_training(workdir, tiny_data) -> None:
    import pytest

    from bienbao.quant import ConfigError

    train = load_train_config(CONFIGS / "base.yaml", {"data": str(tiny_data), "imgsz": 96, "workers": 0})
    qat = load_qat_config(CONFIGS / "qat.yaml", {"quantization": str(CONFIGS / "quantization.yaml")})
    with pytest.raises(ConfigError, match="target: tensorrt"):
        run_pipeline(PipelineOptions(train, qat, export_formats=("onnx", "engine")))
    assert not (workdir / "logs/pipeline/state.json").exists()

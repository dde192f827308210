"""Real benchmarks of small ONNX models on real frames: structure and sane values, not speeds."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from bienbao.bench import STAGES, build_result, load_result, run_benchmark


def frames(folder, count: int = 3):
    return [cv2.imread(str(p)) for p in sorted(folder.iterdir())[:count]]


def test_interleaved_runs_per_stage_with_memory_in_a_separate_pass(models, frame_folder) -> None:
    runs, interrupted = run_benchmark(models, frames(frame_folder), runs=4, warmup=1, threads=1)
    assert not interrupted and [r.name for r in runs] == ["small", "large"]
    result = build_result(runs, {"runs": 4, "threads": 1}, interrupted)
    first, second = result["models"]
    assert first["ratio_vs_first"] == 1.0 and second["ratio_vs_first"] > 0
    for model in result["models"]:
        assert set(model["latency_ms"]) == set(STAGES)
        e2e = model["latency_ms"]["end_to_end"]
        assert e2e["count"] == 4 and 0 < e2e["min"] <= e2e["p50"] <= e2e["p90"] <= e2e["p99"] <= e2e["max"]
        parts = sum(model["latency_ms"][s]["mean"] for s in ("preprocess", "inference", "postprocess"))
        assert parts == pytest.approx(e2e["mean"], rel=0.05)
        memory = model["memory"]
        assert memory["peak_rss_mb"] >= memory["rss_after_load_mb"] >= memory["baseline_rss_mb"] > 0
        assert model["file_size_bytes"] > 0 and model["load_time_s"] > 0 and model["input_size"] == [160, 160]
    assert second["file_size_bytes"] > first["file_size_bytes"]
    assert result["device"]["cores"] >= 1 and "onnxruntime" in result["libraries"]


def test_an_interrupted_run_keeps_what_it_measured(models, frame_folder) -> None:
    def interrupt_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    runs, interrupted = run_benchmark(models, frames(frame_folder), runs=10, warmup=0, progress=interrupt_after_two)
    assert interrupted and all(len(r.samples_ms["end_to_end"]) == 2 for r in runs)
    assert build_result(runs, {"runs": 10}, interrupted)["interrupted"] is True


def test_bad_arguments(models, frame_folder, tmp_path) -> None:
    with pytest.raises(ValueError, match="runs"):
        run_benchmark(models, frames(frame_folder), runs=0)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        run_benchmark([tmp_path / "missing.onnx"], frames(frame_folder), runs=1)


def test_the_command_writes_json_markdown_and_a_chart_and_compares(models, frame_folder, tmp_path) -> None:
    command = [
        sys.executable,
        "-m",
        "bienbao.cli",
        "bench",
        "--model",
        str(models[0]),
        "--model",
        str(models[1]),
        "--runs",
        "3",
        "--warmup",
        "1",
        "--source",
        str(frame_folder),
        "--frames",
        "2",
    ]
    for name in ("a", "b"):
        done = subprocess.run([*command, "--out", str(tmp_path / name)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert "small" in done.stdout and "e2e mean ms" in done.stdout
    result = load_result(tmp_path / "a" / "result.json")
    assert result["schema"] == "bienbao-bench" and result["options"]["interleaved"] is True
    assert (tmp_path / "a" / "latency.png").stat().st_size > 0
    assert "| small |" in (tmp_path / "a" / "result.md").read_text()
    compared = subprocess.run(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "bench",
            "compare",
            str(tmp_path / "a" / "result.json"),
            str(tmp_path / "b" / "result.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "small" in compared and "A/B" in compared
    missing = subprocess.run([*command[:5], str(tmp_path / "nope.onnx")], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "model file not found" in missing.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "other"}))
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "bench",
            "compare",
            str(tmp_path / "bad.json"),
            str(tmp_path / "bad.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 2 and "not a bienbao-bench" in wrong.stderr


def test_the_openvino_precision_goes_to_openvino_only(models) -> None:
    from bienbao.bench.runner import backend_options

    assert backend_options(models[0], "openvino", 2, "f32") == {"threads": 2, "precision": "f32"}
    assert backend_options(models[0], "onnxruntime", 2, "f32") == {"threads": 2}  # ONNX Runtime has no such hint
    assert backend_options(models[0], "auto", None, None) == {}

"""Bench faults (issue 16): an output folder that cannot take the results is refused before any
measurement, results are saved the moment they exist, bad sources and settings are named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bienbao.bench import runner
from bienbao.cli import build_parser


def bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_4_a_read_only_out_folder_is_refused_before_measuring(models, read_only_dir) -> None:
    result = bench("--model", models[0], "--runs", "2", "--out", read_only_dir / "results")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--out folder {read_only_dir / 'results'} is not writable" in result.stderr
    assert "benchmarking" not in result.stderr  # nothing was measured, so nothing was lost


def test_4_the_latency_figures_are_saved_before_the_memory_pass(models, tmp_path, monkeypatch) -> None:
    def failing_memory_pass(*args, **kwargs):
        raise RuntimeError("memory pass crashed")

    monkeypatch.setattr(runner, "_memory_pass", failing_memory_pass)
    args = build_parser()[0].parse_args(
        ["bench", "--model", str(models[0]), "--runs", "3", "--warmup", "0", "--out", str(tmp_path / "out")]
    )
    with pytest.raises(RuntimeError, match="memory pass crashed"):
        args.handler(args)
    saved = json.loads((tmp_path / "out/result.json").read_text())
    assert saved["options"]["memory"] == "pending" and len(saved["models"][0]["latency_ms"]["end_to_end"]) > 0
    assert not list((tmp_path / "out").glob("*.partial"))


def test_9_frames_zero_and_an_unreadable_image_are_named(models, frame_folder, tmp_path) -> None:
    result = bench("--model", models[0], "--frames", "0", "--out", tmp_path / "a")
    assert result.returncode == 2 and "--frames 0: at least 1" in result.stderr
    folder = tmp_path / "frames"
    folder.mkdir()
    real = sorted(Path(frame_folder).iterdir())[0]
    (folder / real.name).write_bytes(real.read_bytes())
    (folder / "zz_broken.jpg").write_text("not a JPEG")
    result = bench("--model", models[0], "--source", folder, "--runs", "1", "--out", tmp_path / "b")
    assert result.returncode == 2 and f"cannot read {folder / 'zz_broken.jpg'}" in result.stderr


def test_12_bench_compare_names_a_file_that_is_not_json(tmp_path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("latency was fine\n")
    result = bench("compare", bad, bad)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bad} is not a bench result: not JSON" in result.stderr

"""The Jetson path across packages (runtime + bench + the board scripts), up to the hardware call:
``bench`` on a TensorRT engine and ``deploy/jetson/selfcheck.sh``, against the test doubles of
TensorRT and pycuda in packages/runtime/tests/doubles/ (see its README.md). Here because they need
bench and runtime installed together (the integration session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx

from bienbao.runtime.metadata import METADATA_KEY, ModelMetadata

ROOT = Path(__file__).resolve().parents[1]
DOUBLES = ROOT / "packages/runtime/tests/doubles"
SHIPPED = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime-384x640.onnx"


def engine_of(onnx_path: Path, engine: Path) -> Path:
    """The ONNX model as the doubles' "engine", with the metadata sidecar an engine carries."""
    model = onnx.load(str(onnx_path))
    engine.write_bytes(model.SerializeToString())
    ModelMetadata.from_json(next(p.value for p in model.metadata_props if p.key == METADATA_KEY)).write_sidecar(engine)
    return engine


def doubles_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{DOUBLES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_bench_on_an_engine_reports_its_device_memory(tmp_path) -> None:
    engine = engine_of(SHIPPED, tmp_path / "model.engine")
    bench = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "bench", "--model", str(engine), "--runs", "3", "--warmup", "1",
         "--out", str(tmp_path / "bench")],
        capture_output=True, text=True, env=doubles_env(), timeout=300, check=False,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    result = json.loads(next((tmp_path / "bench").glob("*.json")).read_text())
    model = result["models"][0]
    assert model["backend"].startswith("tensorrt")
    assert model["memory"]["device_memory_added_mb"] > 0  # the engine's buffers, seen through mem_get_info


def test_the_jetson_selfcheck_runs_every_step_and_reports_a_table(tmp_path) -> None:
    trtexec = tmp_path / "trtexec"  # copies the ONNX as the doubles' "engine", as trtexec would build one
    trtexec.write_text(
        "#!/bin/sh\nfor a; do case $a in --onnx=*) i=${a#--onnx=};; --saveEngine=*) o=${a#--saveEngine=};; esac; done\n"
        'cp "$i" "$o"\n'
    )
    trtexec.chmod(0o755)
    env = doubles_env()
    env.update(TRTEXEC=str(trtexec), PYTHON=sys.executable)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    script = str(ROOT / "deploy/jetson/selfcheck.sh")
    run = subprocess.run(
        ["bash", script, str(SHIPPED), str(ROOT / "datasets/vn-signs-sample.mp4")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip
    statuses = ("PASS", "FAIL", "SKIP")
    rows = {
        line[:22].strip(): line[23:28].strip() for line in run.stdout.splitlines() if line[23:28].strip() in statuses
    }
    assert rows == {
        "TensorRT": "PASS", "pycuda": "PASS", "engine build": "PASS", "CSI camera": "SKIP",
        "detect (100 frames)": "PASS", "bench": "PASS",
    }, run.stdout + run.stderr  # fmt: skip
    assert run.returncode == 0 and "0 step(s) failed" in run.stdout
    env["TRTEXEC"] = str(tmp_path / "missing")  # a board without trtexec: named, counted, the rest skipped
    run = subprocess.run(
        ["bash", script, str(SHIPPED), "csi"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert run.returncode == 2 and "no trtexec at" in run.stdout and "has no GStreamer" in run.stdout

"""The TensorRT backend up to the hardware call, against the test doubles in ``doubles/`` (a
``tensorrt`` runtime API and a ``pycuda.driver`` whose engine runs its ONNX bytes with ONNX Runtime;
see doubles/README.md): bindings by tensor name, page-locked buffers, every CUDA call inside the
pushed primary context, the engine/metadata pairing, dynamic engines, and ``detect`` and ``bench``
on an engine. What only a board can show (a real engine's speed and numerics, CUDA streams
overlapping) is left to deploy/jetson/selfcheck.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from bienbao.runtime.metadata import METADATA_KEY, MetadataError, ModelMetadata

DOUBLES = Path(__file__).parent / "doubles"
ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime-384x640.onnx"


@pytest.fixture
def doubles(monkeypatch):
    """``tensorrt`` and ``pycuda`` importable from doubles/, fresh for each test."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(DOUBLES))
    import pycuda.driver as cuda

    cuda.reset()
    yield cuda
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        sys.modules.pop(name, None)


def as_engine(onnx_path: str | Path, engine: Path, sidecar: bool = True, rename: bool = False) -> Path:
    """The ONNX model as the doubles' "engine" (its bytes), with the metadata sidecar TensorRT
    engines carry; ``rename``: I/O tensors named as trtexec may name them, not images/output0."""
    model = onnx.load(str(onnx_path))
    if rename:
        for node in model.graph.node:
            node.input[:] = ["input_0" if n == "images" else n for n in node.input]
            node.output[:] = ["logits:0" if n == "output0" else n for n in node.output]
        model.graph.input[0].name, model.graph.output[0].name = "input_0", "logits:0"
    engine.write_bytes(model.SerializeToString())
    if sidecar:
        ModelMetadata.from_json(next(p.value for p in model.metadata_props if p.key == METADATA_KEY)).write_sidecar(
            engine
        )
    return engine


def test_binds_by_name_copies_inside_the_context_and_matches_onnx_runtime(doubles, tmp_path, brightness_model) -> None:
    from bienbao.runtime.backends.tensorrt import TensorRTBackend

    source = brightness_model(tmp_path / "m.onnx")
    backend = TensorRTBackend(as_engine(source, tmp_path / "m.engine", rename=True))
    assert (backend.input_name, backend.output_name) == ("input_0", "logits:0")
    assert backend.input_size == (320, 320) and backend.metadata.names == brightness_model.names
    host_in, _ = backend._buffers["input_0"]
    assert host_in.nbytes == 3 * 320 * 320 * 4  # page-locked, sized from the engine's shapes
    frame = np.random.default_rng(0).random((1, 3, 320, 320), np.float32)
    got = backend.infer(frame)
    want = onnxruntime.InferenceSession(source).run(None, {"images": frame})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert doubles.CALLS == ["htod", "execute", "dtoh"] and doubles._state["depth"] == 0
    with pytest.raises(ValueError, match="this engine takes"):
        backend.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_the_sidecar_pairs_with_the_engine(doubles, tmp_path, brightness_model) -> None:
    from bienbao.runtime.backends.tensorrt import TensorRTBackend

    source = brightness_model(tmp_path / "m.onnx")
    bare = TensorRTBackend(as_engine(source, tmp_path / "bare.engine", sidecar=False))
    assert bare.metadata is None  # runs; the detector then asks for names
    broken = as_engine(source, tmp_path / "broken.engine")
    ModelMetadata.sidecar_path(broken).write_text("{not json", encoding="utf-8")
    with pytest.raises(MetadataError):
        TensorRTBackend(broken)
    unreadable = tmp_path / "other.engine"
    unreadable.write_bytes(b"serialized for another GPU")
    with pytest.raises(RuntimeError, match="rebuild it on this device"):
        TensorRTBackend(unreadable)
    assert doubles._state["depth"] == 0  # popped even when loading fails


def test_a_dynamic_engine_is_sized_from_its_metadata(doubles, tmp_path, brightness_model) -> None:
    from bienbao.runtime.backends.tensorrt import TensorRTBackend

    model = onnx.load(brightness_model(tmp_path / "m.onnx"))
    for dim in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_param = "size"
    onnx.save(model, tmp_path / "dyn.onnx")
    backend = TensorRTBackend(as_engine(tmp_path / "dyn.onnx", tmp_path / "dyn.engine"))
    assert backend.input_shape == (1, 3, 320, 320) and backend.output_shape == (1, 6, 2)
    with pytest.raises(RuntimeError, match="dynamic input and no metadata sidecar"):
        TensorRTBackend(as_engine(tmp_path / "dyn.onnx", tmp_path / "dyn2.engine", sidecar=False))


def test_tensorrt_older_than_8_5_is_refused(doubles, tmp_path, brightness_model, monkeypatch) -> None:
    import tensorrt

    from bienbao.runtime.backends.tensorrt import TensorRTBackend

    monkeypatch.setattr(tensorrt, "__version__", "8.4.1")
    with pytest.raises(RuntimeError, match="needs TensorRT 8.5 or newer"):
        TensorRTBackend(as_engine(brightness_model(tmp_path / "m.onnx"), tmp_path / "m.engine"))


@pytest.mark.parametrize("version", ["8.5.2", "8.6.2", "10.3.0"])
def test_detect_runs_an_engine_end_to_end(tmp_path, version) -> None:
    engine = as_engine(SHIPPED, tmp_path / "model.engine")
    clip = ROOT / "datasets/vn-signs-sample.mp4"
    run = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "detect", str(engine), "--source", str(clip), "--headless",
         "--every-frame", "--max-frames", "20", "--jsonl", str(tmp_path / "d.jsonl")],
        capture_output=True, text=True, env=doubles_env(version), timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])["summary"]
    assert summary["backend"].startswith("tensorrt") and summary["frames_processed"] == 20
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert sum(len(line["detections"]) for line in lines) > 5  # the shipped model's signs, through the engine path


def doubles_env(version: str = "10.3.0") -> dict[str, str]:
    """The environment of a ``bienbao`` subprocess that imports the doubles as tensorrt and pycuda."""
    env = {**os.environ, "PYTHONPATH": f"{DOUBLES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["FAKE_TENSORRT_VERSION"] = version
    return env

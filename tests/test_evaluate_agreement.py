"""Cross-package: ``bienbao evaluate`` of the deployed ONNX (through bienbao.runtime) agrees with
ultralytics' own ``val`` of the checkpoint it came from, within 0.5 mAP points, on the real
valid split."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "datasets/vietnam-traffic-sign-detection/dataset.yaml"
FP32 = SHARED / "weights/vn-signs-fp32.pt"


@pytest.mark.skipif(not FP32.exists() or not DATA.exists(), reason="needs ../shared (weights and dataset)")
def test_runtime_evaluation_matches_ultralytics_val(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    from bienbao.trainer.evaluate import evaluate
    from bienbao.trainer.export import export_onnx

    onnx_path = export_onnx(FP32, tmp_path, "fp32", imgsz=640).path
    ultralytics = evaluate(FP32, DATA, "val", imgsz=640)
    deployed = evaluate(onnx_path, DATA, "val")
    print(f"ultralytics val mAP50 {ultralytics.map50:.4f} mAP50-95 {ultralytics.map50_95:.4f}; "
          f"runtime mAP50 {deployed.map50:.4f} mAP50-95 {deployed.map50_95:.4f}")
    assert deployed.images == ultralytics.images == 171 and deployed.instances == ultralytics.instances
    assert abs(deployed.map50 - ultralytics.map50) <= 0.005
    assert abs(deployed.map50_95 - ultralytics.map50_95) <= 0.005
    assert set(deployed.per_class) == set(ultralytics.per_class)

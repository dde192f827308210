"""Cross-package: ``bienbao evaluate`` of the deployed ONNX (through bienbao.runtime) agrees with
ultralytics' own ``val`` of the checkpoint it came from, within 0.5 mAP points, on the
sample's real valid frames."""

from __future__ import annotations


def test_runtime_evaluation_matches_ultralytics_val(tmp_path, offline, fp32_weights, sign_data) -> None:
    from bienbao.trainer.evaluation.evaluate import evaluate
    from bienbao.trainer.export import export_onnx

    onnx_path = export_onnx(fp32_weights, tmp_path, "fp32", imgsz=640).path
    ultralytics = evaluate(fp32_weights, sign_data, "val", imgsz=640)
    deployed = evaluate(onnx_path, sign_data, "val")
    print(
        f"ultralytics val mAP50 {ultralytics.map50:.4f} mAP50-95 {ultralytics.map50_95:.4f}; "
        f"runtime mAP50 {deployed.map50:.4f} mAP50-95 {deployed.map50_95:.4f}"
    )
    frames = len(list((sign_data.parent / "valid/images").iterdir()))
    assert deployed.images == ultralytics.images == frames and deployed.instances == ultralytics.instances
    assert abs(deployed.map50 - ultralytics.map50) <= 0.005
    assert abs(deployed.map50_95 - ultralytics.map50_95) <= 0.005
    assert set(deployed.per_class) == set(ultralytics.per_class)

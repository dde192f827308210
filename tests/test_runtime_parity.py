"""Cross-package: the torch-free runtime on a model exported by the trainer, against ultralytics.

On real dashcam frames, ``bienbao.runtime.Detector`` running the exported FP32 ONNX finds the
same signs as ultralytics' own prediction with the checkpoint it came from (same pre-processing,
decoding and NMS, so same classes and boxes within IoU 0.9).
"""

from __future__ import annotations

import cv2


def test_runtime_detector_matches_ultralytics_predict(tmp_path, offline, fp32_weights, sample_frames) -> None:
    from ultralytics import YOLO

    from bienbao.runtime import Detector
    from bienbao.runtime.postprocess import box_iou
    from bienbao.trainer.export import export_onnx

    onnx_path = export_onnx(fp32_weights, tmp_path, "fp32", imgsz=640).path
    detector = Detector(onnx_path, conf=0.25, iou=0.7)
    reference = YOLO(str(fp32_weights))
    frames = sample_frames
    matched = total = 0
    for path in frames:
        frame = cv2.imread(str(path))
        ours = detector.detect(frame)
        theirs = reference.predict(frame, imgsz=640, conf=0.25, iou=0.7, verbose=False)[0].boxes
        their_boxes, their_classes = theirs.xyxy.numpy(), theirs.cls.numpy().astype(int)
        assert abs(len(ours) - len(their_boxes)) <= 1, path.name
        for box, cls in zip(their_boxes, their_classes, strict=True):
            total += 1
            same = ours.boxes[ours.class_ids == cls]
            matched += bool(len(same)) and bool(box_iou(box[None], same).max() > 0.9)
    print(f"ultralytics detections matched by the runtime: {matched}/{total}")
    assert total >= 5, "the FP32 model should find signs in these frames"
    assert matched / total >= 0.95, f"{matched}/{total}"

#!/usr/bin/env bash
# Rebuild every file in models/pretrained/ with the project's own commands (see README.md here).
# Run from the repository root, in an environment with bienbao-trainer[tflite] installed:
#   DATA=path/to/vietnam-traffic-sign-detection/dataset.yaml START=path/to/vn-signs-fp32.pt \
#     bash models/pretrained/rebuild.sh
# About 4 hours of FP32 and 1 hour of QAT training on two CPU cores (minutes on a GPU).
# Each step can be rerun alone: set STEPS to a subset of "fp32 qat export openvino".
set -euo pipefail
: "${DATA:?set DATA to the full dataset YAML (train/valid/test)}"
: "${START:=../shared/weights/vn-signs-fp32.pt}"
STEPS=${STEPS:-"fp32 qat export openvino"}
OUT=models/pretrained
export YOLO_OFFLINE=1

if [[ " $STEPS " == *" fp32 "* ]]; then
  # the FP32 model: 24 flip-free epochs of bienbao train (configs/base.yaml: mosaic, close_mosaic 5,
  # scale 0.3, no flips) on vn-signs-fp32.pt, the 8-epoch ultralytics fine-tune of yolov8n.pt;
  # best.pt is the best validation epoch (18). START is the 8-epoch model here.
  bienbao train --model "$START" --data "$DATA" --epochs 24 --name ship_fp32 --exist-ok
  cp models/checkpoints/ship_fp32/best.pt "$OUT/yolov8n-vn-signs-fp32.pt"
fi

if [[ " $STEPS " == *" qat "* ]]; then
  # the packaged recipe (configs/qat.yaml + configs/quantization.yaml, the QAT study's best row):
  # ONNX Runtime layout, model.0/model.1 float, learnable (LSQ) weight scales, 3 epochs with every
  # quantizer on from the start, BN statistics frozen from epoch 1, ranges frozen for the last epoch
  bienbao qat --weights "$OUT/yolov8n-vn-signs-fp32.pt" --data "$DATA" --name ship_qat --exist-ok
  cp models/checkpoints/ship_qat/last.pt "$OUT/yolov8n-vn-signs-qat.pt"
fi

if [[ " $STEPS " == *" export "* ]]; then
  tmp=$(mktemp -d)
  bienbao export --checkpoint "$OUT/yolov8n-vn-signs-qat.pt" --format onnx --format tflite --output "$tmp"
  mv "$tmp/onnx/pretrained_yolov8n-vn-signs-qat_onnxruntime.onnx" "$OUT/yolov8n-vn-signs-int8-onnxruntime.onnx"
  mv "$tmp/tflite/pretrained_yolov8n-vn-signs-qat_int8.tflite" "$OUT/yolov8n-vn-signs-int8.tflite"
  mv "$tmp/tflite/pretrained_yolov8n-vn-signs-qat_int8.json" "$OUT/yolov8n-vn-signs-int8.json"
  # the recommended CPU file: the same checkpoint at 384x640 (16:9 cameras)
  bienbao export --checkpoint "$OUT/yolov8n-vn-signs-qat.pt" --format onnx --imgsz 640 --rect --output "$tmp/rect"
  mv "$tmp"/rect/onnx/*_onnxruntime*.onnx "$OUT/yolov8n-vn-signs-int8-onnxruntime-384x640.onnx"
  rm -r "$tmp"
fi
if [[ " $STEPS " == *" openvino "* ]]; then
  # the OpenVINO files: PTQ of the FP32 file in the openvino layout (exp6_openvino: one uint8 grid per
  # block after its SiLU, unified concat grids, 8-bit weights) with bias correction, calibration seed 0
  # (docs/results/openvino-peer: chosen on val over QAT and the other PTQ rows, judged on test)
  bienbao calibrate --data "$DATA" --weights "$OUT/yolov8n-vn-signs-fp32.pt" --experiment exp6_openvino \
    --name ship_ptq_openvino --exist-ok --set seed=0 --set qat.calibration.bias_correction=true
  cp models/checkpoints/ship_ptq_openvino/best.pt "$OUT/yolov8n-vn-signs-ptq-openvino.pt"
  tmp=$(mktemp -d)
  for size in "384 640" "640"; do
    # shellcheck disable=SC2086  # the size is one or two numbers
    bienbao export --checkpoint "$OUT/yolov8n-vn-signs-ptq-openvino.pt" --target openvino --format openvino \
      --imgsz $size --output "$tmp/${size// /x}"
  done
  for ext in xml bin; do
    mv "$tmp"/384x640/openvino/*_openvino_384x640.$ext "$OUT/yolov8n-vn-signs-int8-openvino-384x640.$ext"
    mv "$tmp"/640/openvino/*_openvino.$ext "$OUT/yolov8n-vn-signs-int8-openvino.$ext"
  done
  rm -r "$tmp"
fi
sha256sum "$OUT"/*.pt "$OUT"/*.onnx "$OUT"/*.tflite "$OUT"/*.xml "$OUT"/*.bin

#!/usr/bin/env bash
# PTQ rows of the layout / weight-width / bias-correction ablation, each over calibration seeds:
# calibrate the shipped FP32 model, export at 384x640 for its runtime (onnxruntime layout: ONNX on
# ONNX Runtime; openvino layout: IR on OpenVINO), score val and test with bienbao evaluate.
#   D=path/to/dataset.yaml bash docs/results/openvino-peer/ablation.sh [ROW ...]
# ROW: ort7 ort8 ov7 ov8 ov8bc (default: these five); the calibration rows on ov8bc: mean minmax
# percentile mse (range estimator), cal128 (128 batches of 8 instead of 32: every training image),
# rect (calibration frames letterboxed at their own 16:9 aspect, 384x640, instead of the square);
# SEEDS (default "0 1 2"). Prints one line per file and split.
set -euo pipefail
: "${D:?set D to the dataset YAML}"
HERE=docs/results/openvino-peer
FP32=models/pretrained/yolov8n-vn-signs-fp32.pt
declare -A POLICY=([ort7]=exp0_all_integer [ort8]=$HERE/ort-8bit.yaml [ov7]=$HERE/ov-7bit.yaml [ov8]=exp6_openvino [ov8bc]=exp6_openvino
  [mean]=$HERE/ov-range-mean.yaml [minmax]=$HERE/ov-range-minmax.yaml [percentile]=$HERE/ov-range-percentile.yaml
  [mse]=$HERE/ov-range-mse.yaml [cal128]=exp6_openvino [rect]=exp6_openvino)
declare -A TARGET=([ort7]=onnxruntime [ort8]=onnxruntime)
declare -A FORMAT=([ort7]=onnx [ort8]=onnx)
rows=("$@")
[[ ${#rows[@]} -gt 0 ]] || rows=(ort7 ort8 ov7 ov8 ov8bc)
for row in "${rows[@]}"; do
  for seed in ${SEEDS:-0 1 2}; do
    name=ablation_${row}_s$seed
    extra=()
    [[ " ort7 ort8 ov7 ov8 " == *" $row "* ]] || extra=(--set qat.calibration.bias_correction=true)
    [[ $row == cal128 ]] && extra+=(--set qat.calibration.batches=128)
    [[ $row == rect ]] && extra+=(--set qat.calibration.rect=true)
    bienbao calibrate --data "$D" --weights $FP32 --experiment "${POLICY[$row]}" --name "$name" --exist-ok --set seed="$seed" "${extra[@]}" >"logs/$name.log" 2>&1
    out=logs/ablation/$name
    bienbao export --checkpoint "models/checkpoints/$name/best.pt" --target "${TARGET[$row]:-openvino}" --format "${FORMAT[$row]:-openvino}" \
      --imgsz 384 640 --output "$out" >/dev/null
    file=$(find "$out/${FORMAT[$row]:-openvino}" -name '*.xml' -o -name '*.onnx' | head -1)
    for split in val test; do
      echo "$row seed=$seed $split $(bienbao evaluate --model "$file" --data "$D" --split $split --json "$out/$split.json" 2>/dev/null | grep -E 'mAP50 ' | head -1)"
    done
  done
done

#!/usr/bin/env bash
# Build a TensorRT engine on the Jetson that will run it (an engine only runs with the TensorRT
# version and GPU it was built with).
#
#   deploy/jetson/build_engine.sh models/exported/onnx/qat_best_tensorrt.onnx [model.engine]
#       trtexec from JetPack on a Q/DQ ONNX exported with `--target tensorrt`
#   deploy/jetson/build_engine.sh --checkpoint models/checkpoints/qat/best.pt
#       `bienbao export --format engine` (TensorRT's Python API; needs bienbao-trainer on the board)
#
# Same settings either way: explicit quantization from the Q/DQ nodes (--int8), float layers in
# FP16 (--fp16). The model's metadata is written next to the engine as <engine>.json, which
# bienbao.runtime reads.
set -euo pipefail

usage() {
    echo "usage: $0 MODEL.onnx [MODEL.engine]  |  $0 --checkpoint CHECKPOINT.pt [OUTPUT_DIR]" >&2
    exit 2
}

if [[ $# -ge 1 && $1 == "--checkpoint" ]]; then
    [[ $# -ge 2 && $# -le 3 ]] || usage
    if ! command -v bienbao > /dev/null || ! bienbao export --help > /dev/null 2>&1; then
        echo "error: bienbao export is not installed here (pip install bienbao-trainer); or export the ONNX on" \
             "a workstation and pass it to this script" >&2
        exit 2
    fi
    exec bienbao export --checkpoint "$2" --target tensorrt --format engine --output "${3:-models/exported}"
fi
if [[ $# -lt 1 || $# -gt 2 ]]; then
    usage
fi
onnx_path=$1
engine_path=${2:-${onnx_path%.onnx}.engine}
trtexec=${TRTEXEC:-/usr/src/tensorrt/bin/trtexec}

if [[ ! -f "$onnx_path" ]]; then
    echo "error: $onnx_path not found" >&2
    exit 2
fi
if [[ ! -x "$trtexec" ]]; then
    echo "error: trtexec not found at $trtexec (JetPack installs it there; set TRTEXEC=... otherwise)" >&2
    exit 2
fi

"$trtexec" --onnx="$onnx_path" --saveEngine="$engine_path" --int8 --fp16 --memPoolSize=workspace:2048M

python3 - "$onnx_path" "$engine_path" <<'PY'
import sys
from pathlib import Path

onnx_path, engine_path = sys.argv[1], Path(sys.argv[2])
try:
    import onnx
    props = {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
except ImportError:
    import onnxruntime
    props = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
if "bienbao" not in props:
    sys.exit(f"error: {onnx_path} has no bienbao metadata: export it with `bienbao export`")
engine_path.with_suffix(".json").write_text(props["bienbao"] + "\n", encoding="utf-8")
print(f"engine: {engine_path}  metadata: {engine_path.with_suffix('.json')}")
PY

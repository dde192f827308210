#!/usr/bin/env bash
# Install bienbao on a Jetson with JetPack 6, without a container: a virtual environment that sees
# JetPack's TensorRT bindings and its GStreamer-enabled OpenCV (system site packages), pycuda built
# on the board, bienbao-runtime and bienbao-bench, an engine, and the bienbao-detect service.
#
#   sudo apt install python3-venv python3-dev python3-libnvinfer python3-opencv
#   deploy/jetson/build_engine.sh model_tensorrt.onnx model.engine   # on this board
#   sudo deploy/jetson/install.sh dist/ model.engine
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: sudo $0 WHEEL_DIR MODEL.engine" >&2
    exit 2
fi
wheels=$1
model=$2
prefix=${BIENBAO_PREFIX:-/opt/bienbao}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/install-common.sh
source "$here/../install-common.sh"

if ! python3 -c "import tensorrt, cv2" 2> /dev/null; then
    echo "error: JetPack's tensorrt or cv2 is missing: sudo apt install python3-libnvinfer python3-opencv" >&2
    exit 2
fi
cuda_build_env  # sudo's PATH has no /usr/local/cuda/bin: without it pycuda's build cannot find CUDA
python3 -m venv --system-site-packages "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --upgrade pip
# no opencv (nor serve) extra: a PyPI OpenCV would shadow JetPack's, which has GStreamer for the CSI
# camera; --serve uses that system cv2. mqtt: the fleet feed (--publish)
"$prefix/venv/bin/python" -m pip install "pycuda==2025.1.2" "$(wheel "$wheels" bienbao_core)" "$(wheel "$wheels" bienbao_cli)" \
    "$(wheel "$wheels" bienbao_runtime)[display,mqtt,metrics]" "$(wheel "$wheels" bienbao_bench)"
"$prefix/venv/bin/bienbao" info
install_model "$prefix" "$here" "$model"
install_service "$here"

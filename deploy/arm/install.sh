#!/usr/bin/env bash
# Install bienbao on a Raspberry Pi OS 64-bit (or any aarch64 Linux) board: bienbao-runtime with
# LiteRT (ai-edge-litert) and OpenCV from PyPI, bienbao-bench, an INT8 TFLite model, and the
# bienbao-detect service.
#
#   nox -s build                                  # the wheels, on any machine (pure Python)
#   bienbao export --format tflite                # the model + its .json, on the workstation
#   sudo deploy/arm/install.sh dist/ models/exported/tflite/qat_best_int8.tflite
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: sudo $0 WHEEL_DIR MODEL.tflite" >&2
    exit 2
fi
wheels=$1
model=$2
prefix=${BIENBAO_PREFIX:-/opt/bienbao}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/install-common.sh
source "$here/../install-common.sh"

if [[ $(uname -m) != aarch64 ]]; then
    echo "warning: $(uname -m), not aarch64: the recipe is written for 64-bit ARM boards" >&2
fi
python3 -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --upgrade pip
"$prefix/venv/bin/python" -m pip install "$(wheel "$wheels" bienbao_core)" "$(wheel "$wheels" bienbao_cli)" \
    "$(wheel "$wheels" bienbao_runtime)[tflite,opencv,display,mqtt,metrics]" \
    "$(wheel "$wheels" bienbao_bench)"
"$prefix/venv/bin/bienbao" info
install_model "$prefix" "$here" "$model"
install_service "$here"

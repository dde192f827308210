# Shared by deploy/jetson/install.sh and deploy/arm/install.sh (sourced, not run): the model, the
# service user, the unit and its settings.
# shellcheck shell=bash

cuda_build_env() {  # make CUDA's nvcc visible to a source build (pycuda finds CUDA through nvcc)
    local cuda=${CUDA_HOME:-/usr/local/cuda}
    if [[ ! -x "$cuda/bin/nvcc" ]]; then
        echo "error: $cuda/bin/nvcc not found: pycuda is built on the board and needs the CUDA toolkit" >&2
        echo "       (JetPack: sudo apt install nvidia-jetpack, or cuda-toolkit-12-*; set CUDA_HOME if CUDA is elsewhere)" >&2
        exit 2
    fi
    export CUDA_ROOT=$cuda CUDA_HOME=$cuda PATH="$cuda/bin:$PATH"
    export LD_LIBRARY_PATH="$cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

install_model() {  # PREFIX RECIPE_DIR MODEL (with its .json sidecar beside it)
    local prefix=$1 here=$2 model=$3
    local sidecar="${model%.*}.json" suffix="${model##*.}"
    if [[ ! -f "$model" ]]; then
        echo "error: model $model not found" >&2
        exit 2
    fi
    if [[ ! -f "$sidecar" ]]; then
        echo "error: $sidecar not found: bienbao exports write the model's metadata there" >&2
        exit 2
    fi
    install -d "$prefix/models"
    install -m 644 "$model" "$prefix/models/model.$suffix"
    install -m 644 "$sidecar" "$prefix/models/model.json"
    install -m 644 "$here/README.md" "$prefix/README.md"
}

install_service() {  # RECIPE_DIR
    local here=$1
    if ! id bienbao > /dev/null 2>&1; then
        useradd --system --user-group --groups video --home-dir /var/lib/bienbao --shell /usr/sbin/nologin bienbao
    fi
    install -m 644 "$here/bienbao-detect.service" /etc/systemd/system/bienbao-detect.service
    install -m 644 "$here/../bienbao-health.service" "$here/../bienbao-health.timer" /etc/systemd/system/
    if [[ ! -f /etc/default/bienbao-detect ]]; then  # keep the board's own settings on a reinstall
        install -m 644 "$here/bienbao-detect.env" /etc/default/bienbao-detect
    fi
    systemctl daemon-reload
    echo "installed. Start it:  sudo systemctl enable --now bienbao-detect bienbao-health.timer;  logs: journalctl -u bienbao-detect -f"
    echo "detections: /var/lib/bienbao/detections.jsonl;  settings: /etc/default/bienbao-detect"
}

wheel() {  # WHEEL_DIR NAME: the one wheel of a bienbao package in a folder
    local found=("$1"/"$2"-*.whl)
    if [[ ! -f "${found[0]}" ]]; then
        echo "error: no $2 wheel in $1 (nox -s build writes them to dist/)" >&2
        exit 2
    fi
    echo "${found[0]}"
}

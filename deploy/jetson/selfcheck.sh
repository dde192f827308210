#!/usr/bin/env bash
# What a board owner runs once after install, to see which step of the Jetson path works on this
# board and which does not, in one table (none of these steps has run on a real Jetson in the
# project's CI: see deploy/README.md, "What was verified where").
#
#   deploy/jetson/selfcheck.sh MODEL_TENSORRT.onnx [SOURCE]
#       MODEL_TENSORRT.onnx: a Q/DQ ONNX from `bienbao export --target tensorrt`
#       SOURCE: what detect reads (default: csi; a video file or /dev/video0 also work)
#
# Steps: TensorRT and pycuda versions, the engine build (build_engine.sh), the CSI camera through
# GStreamer, a 100-frame detect run on the engine, and bench. Each prints PASS, FAIL (with the
# reason) or SKIP; the exit status is the number of failures. Logs: ./selfcheck-logs/.
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 MODEL_TENSORRT.onnx [SOURCE]" >&2
    exit 2
fi
onnx=$1
source=${2:-csi}
here=$(cd "$(dirname "$0")" && pwd)
logs=selfcheck-logs
mkdir -p "$logs"
engine="$logs/selfcheck.engine"
rm -f "$engine" "${engine%.engine}.json"  # an engine from an earlier check must not stand in for this one
python=${PYTHON:-python3}
rows=()
failures=0

record() {  # STEP STATUS DETAIL
    rows+=("$(printf '%-22s %-5s %s' "$1" "$2" "$3")")
    [[ $2 == FAIL ]] && failures=$((failures + 1))
}

last_line() {  # LOG: its last non-empty line, for the table
    grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-100
}

if version=$("$python" -c 'import tensorrt; print(tensorrt.__version__)' 2> "$logs/tensorrt.log"); then
    record "TensorRT" PASS "$version (python3-libnvinfer)"
else
    record "TensorRT" FAIL "$(last_line "$logs/tensorrt.log"): sudo apt install python3-libnvinfer"
fi
if version=$("$python" -c 'import pycuda.driver as c; c.init(); print(c.get_version(), c.Device(0).name())' 2> "$logs/pycuda.log"); then
    record "pycuda" PASS "$version"
else
    record "pycuda" FAIL "$(last_line "$logs/pycuda.log"): deploy/jetson/install.sh builds it"
fi
if [[ -x ${TRTEXEC:-/usr/src/tensorrt/bin/trtexec} ]]; then
    if "$here/build_engine.sh" "$onnx" "$engine" > "$logs/engine.log" 2>&1; then
        record "engine build" PASS "$engine ($(du -h "$engine" | cut -f1))"
    else
        record "engine build" FAIL "$(last_line "$logs/engine.log")"
    fi
else
    record "engine build" FAIL "no trtexec at ${TRTEXEC:-/usr/src/tensorrt/bin/trtexec} (JetPack installs it there)"
fi
if [[ $source == csi* ]]; then
    if "$python" - > "$logs/csi.log" 2>&1 << 'PY'
import sys
import cv2
info = [line for line in cv2.getBuildInformation().splitlines() if "GStreamer:" in line]
if not info or "YES" not in info[0]:
    sys.exit(f"OpenCV {cv2.__version__} has no GStreamer: use JetPack's python3-opencv (--system-site-packages)")
from bienbao.runtime.sources import parse_source
capture = cv2.VideoCapture(*parse_source("csi").open_args())
ok, frame = capture.read()
capture.release()
if not ok:
    sys.exit("nvarguscamerasrc opened no frame: is the camera connected (ls /dev/video*), is nvargus-daemon running?")
print(f"a {frame.shape[1]}x{frame.shape[0]} frame")
PY
    then
        record "CSI camera" PASS "$(last_line "$logs/csi.log")"
    else
        record "CSI camera" FAIL "$(last_line "$logs/csi.log")"
    fi
else
    record "CSI camera" SKIP "source is $source"
fi
if [[ -s $engine ]]; then
    if bienbao detect "$engine" --source "$source" --headless --max-frames 100 > "$logs/detect.log" 2>&1; then
        record "detect (100 frames)" PASS "$(grep -o '"fps": [0-9.]*' "$logs/detect.log" | tail -n 1)"
    else
        record "detect (100 frames)" FAIL "$(last_line "$logs/detect.log")"
    fi
    if bienbao bench --model "$engine" --runs 50 --out "$logs/bench" > "$logs/bench.log" 2>&1; then
        record "bench" PASS "results in $logs/bench/"
    else
        record "bench" FAIL "$(last_line "$logs/bench.log")"
    fi
else
    record "detect (100 frames)" SKIP "no engine"
    record "bench" SKIP "no engine"
fi

echo
printf '%-22s %-5s %s\n' "step" "" "detail"
printf '%s\n' "${rows[@]}"
echo
echo "$failures step(s) failed; logs in $logs/ (send this table and the logs with a bug report)"
exit "$failures"

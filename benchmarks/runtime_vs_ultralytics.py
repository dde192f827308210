"""bienbao.runtime against ultralytics' own ``YOLO("model.onnx").predict`` on the same file.

    python benchmarks/runtime_vs_ultralytics.py --model MODEL.onnx --video VIDEO.mp4

Run in the workstation environment (it has both). Prints, for each: import + load time (fresh
process, three times), pre- plus post-processing time per frame over the video's frames, and the
peak resident memory of a whole run over the video (``bienbao detect --headless --every-frame``
against ``YOLO(model).predict(video, stream=True)``), sampled every 10 ms from outside.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil

IMPORT_RUNTIME = """
import time; t = time.perf_counter()
from bienbao.runtime import Detector
Detector({model!r}); print(time.perf_counter() - t)
"""
IMPORT_ULTRALYTICS = """
import time; t = time.perf_counter()
import bienbao.trainer.ultralytics  # torchvision NMS on a CPU-only torch (ENV.md); a no-op elsewhere
from ultralytics import YOLO
import numpy as np
YOLO({model!r}, task="detect").predict(np.zeros((64, 64, 3), np.uint8), verbose=False)  # it loads lazily
print(time.perf_counter() - t)
"""
PREDICT_ULTRALYTICS = """
import bienbao.trainer.ultralytics
from ultralytics import YOLO
for _ in YOLO({model!r}, task="detect").predict({video!r}, stream=True, verbose=False): pass
"""


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    if process.returncode:
        raise RuntimeError(f"{command[:3]} failed with exit code {process.returncode}")
    return peak, time.perf_counter() - start


def frames_of(video: str) -> list:
    import cv2

    capture, frames = cv2.VideoCapture(video), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", required=True)
    args = parser.parse_args()

    for name, code in (("bienbao.runtime", IMPORT_RUNTIME), ("ultralytics", IMPORT_ULTRALYTICS)):
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", code.format(model=args.model)], capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(3)
        ]
        print(f"{name:16s} import + load: {', '.join(f'{t:.2f}' for t in times)} s")

    from ultralytics import YOLO

    import bienbao.trainer.ultralytics  # noqa: F401
    from bienbao.runtime import Detector
    from bienbao.runtime.postprocess import postprocess
    from bienbao.runtime.preprocess import preprocess

    frames = frames_of(args.video)
    detector = Detector(args.model)
    pre = post = 0.0
    for frame in frames:
        t0 = time.perf_counter()
        tensor, box = preprocess(frame, detector.input_size)
        t1 = time.perf_counter()
        output = detector.backend.infer(tensor)
        t2 = time.perf_counter()
        postprocess(output, box, names=detector.names)
        pre, post = pre + t1 - t0, post + time.perf_counter() - t2
    model = YOLO(args.model, task="detect")
    model.predict(frames[0], verbose=False)
    speeds = [model.predict(frame, verbose=False)[0].speed for frame in frames]
    print(
        f"{'bienbao.runtime':16s} pre {pre / len(frames) * 1000:.2f} ms + post {post / len(frames) * 1000:.2f} ms "
        f"per frame ({len(frames)} frames)"
    )
    print(
        f"{'ultralytics':16s} pre {sum(s['preprocess'] for s in speeds) / len(frames):.2f} ms + post "
        f"{sum(s['postprocess'] for s in speeds) / len(frames):.2f} ms per frame ({len(frames)} frames)"
    )
    ours = peak_rss_mb(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "detect",
            args.model,
            "--source",
            args.video,
            "--headless",
            "--every-frame",
        ]
    )
    theirs = peak_rss_mb([sys.executable, "-c", PREDICT_ULTRALYTICS.format(model=args.model, video=args.video)])
    print(f"{'bienbao detect':16s} peak RSS {ours[0]:.0f} MB ({ours[1]:.1f} s)")
    print(f"{'ultralytics':16s} peak RSS {theirs[0]:.0f} MB ({theirs[1]:.1f} s)")


if __name__ == "__main__":
    main()

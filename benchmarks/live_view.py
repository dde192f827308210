"""Detection-loop frame rate with and without a live-view client (torch-free), interleaved.

Runs the real loop (``run_live``: detect, track, outputs) over the sample clip, every frame in order
(``--every-frame``: the loop's own speed, not the clip's 10 FPS), in three set-ups, round-robin for
``--rounds`` rounds so that machine noise hits all three alike:

- ``no view``: no ``--serve``;
- ``view, no client``: the server runs, nobody watches (no overlay drawn, no JPEG encoded);
- ``view + client``: one client reads the MJPEG stream (what a browser's <img> does) and polls
  ``stats.json`` every second, as the page does; frames are drawn and encoded at most
  ``--serve-fps`` a second.

    python benchmarks/live_view.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from bienbao.core.cpu import describe_cpu
from bienbao.runtime import Detector
from bienbao.runtime.capture import LatestFrameCapture
from bienbao.runtime.live import LiveOutputs, run_live
from bienbao.runtime.serve import LiveView
from bienbao.runtime.sources import parse_source

ROOT = Path(__file__).resolve().parents[1]


def client(port: int, stop: threading.Event, counts: dict) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10) as stream:
        last_poll = 0.0
        while not stop.is_set():
            line = stream.readline()
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":")[1])
                stream.readline()
                stream.read(length)
                counts["frames"] += 1
            if time.monotonic() - last_poll >= 1.0:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=5).read()
                last_poll = time.monotonic()


def one_run(detector: Detector, clip: Path, mode: str, serve_fps: float) -> tuple[float, int]:
    view = LiveView("127.0.0.1", 0, max_fps=serve_fps).start() if mode != "no view" else None
    stop, counts, reader = threading.Event(), {"frames": 0}, None
    if mode == "view + client":
        reader = threading.Thread(target=client, args=(view.port, stop, counts), daemon=True)
        reader.start()
        deadline = time.monotonic() + 5
        while view.stream_clients == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    capture = LatestFrameCapture(parse_source(str(clip)), realtime=False)
    stats = run_live(detector, capture, threading.Event(), outputs=LiveOutputs(view=view))
    stop.set()
    if view is not None:
        view.close()
    if reader is not None:
        reader.join(5)
    return stats.summary()["fps"], counts["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx")
    parser.add_argument("--clip", type=Path, default=ROOT / "datasets/vn-signs-sample.mp4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-fps", type=float, default=5.0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    detector = Detector(args.model, **({"threads": args.threads} if args.threads else {}))
    modes = ("no view", "view, no client", "view + client")
    fps: dict[str, list[float]] = {m: [] for m in modes}
    streamed: list[int] = []
    for _ in range(args.rounds):
        for mode in modes:
            rate, frames = one_run(detector, args.clip, mode, args.serve_fps)
            fps[mode].append(rate)
            streamed += [frames] if mode == "view + client" else []
    cpu = describe_cpu()
    print(
        f"CPU: {cpu['name']} ({'/'.join(cpu['isa'])}); model {args.model.name} ({detector.backend.name}); "
        f"clip {args.clip.name}, every "
        f"frame; {args.rounds} interleaved rounds; stream capped at {args.serve_fps} FPS"
    )
    print("| set-up | FPS (median) | FPS per round | vs no view |\n|---|---|---|---|")
    base = statistics.median(fps["no view"])
    for mode in modes:
        median = statistics.median(fps[mode])
        print(f"| {mode} | {median:.2f} | {', '.join(f'{v:.2f}' for v in fps[mode])} | {median / base:.3f}x |")
    print(f"stream frames the client received per run: {streamed}")


if __name__ == "__main__":
    main()

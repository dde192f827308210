"""The live detection loop: newest frame -> detect -> outputs, until the source ends or a stop.

Outputs are optional and independent: an on-screen window, an annotated video file, and JSON lines
(one line per processed frame: timestamp, frame index, latency, detections). Each JSON line is
written whole and flushed; the video writer is released on every exit path, so Ctrl-C or SIGTERM
leave a playable video and complete JSON lines.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import require
from .capture import LatestFrameCapture
from .detector import Detector
from .draw import Annotator

__all__ = ["LiveStats", "run_live"]


@dataclass
class LiveStats:
    processed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ended: float = 0.0
    dropped: int = 0
    captured: int = 0
    reconnects: int = 0

    def summary(self) -> dict[str, Any]:
        elapsed = max((self.ended or time.perf_counter()) - self.started, 1e-9)
        latencies = np.asarray(self.latencies_ms or [0.0])
        return {
            "frames_processed": self.processed, "frames_captured": self.captured, "frames_dropped": self.dropped,
            "reconnects": self.reconnects, "latency_mean_ms": round(float(latencies.mean()), 2),
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 2),
            "fps": round(self.processed / elapsed, 2), "seconds": round(elapsed, 2),
        }


class _VideoSink:
    def __init__(self, path: Path, fps: float) -> None:
        self.cv2 = require("cv2", "opencv")
        self.path, self.fps, self.writer = path, fps, None

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = image.shape[:2]
            self.writer = self.cv2.VideoWriter(str(self.path), self.cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                               (width, height))
            if not self.writer.isOpened():
                raise OSError(f"cannot write video {self.path} (OpenCV has no mp4v encoder here?)")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class _Window:
    def __init__(self) -> None:
        self.cv2 = require("cv2", "opencv")

    def show(self, image: np.ndarray) -> bool:
        """False when the user closed the window or pressed q/Esc."""
        self.cv2.imshow("bienbao", image)
        return (self.cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        self.cv2.destroyAllWindows()


def _open_lines(path: Path, append: bool):
    """The JSON-lines file, line-buffered; its folder is made as the video sink makes its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a" if append else "w", encoding="utf-8", buffering=1)


def run_live(detector: Detector, capture: LatestFrameCapture, stop: threading.Event, *,
             video: str | Path | None = None, jsonl: str | Path | None = None, show: bool = False,
             annotator: Annotator | None = None, max_frames: int | None = None,
             on_frame=None, append: bool = False) -> LiveStats:
    """Run until the source ends, ``stop`` is set or ``max_frames`` were processed. With
    ``append`` the JSON lines go after an existing file's (a service restarted by systemd)."""
    stats = LiveStats()
    sink = _VideoSink(Path(video), capture.fps) if video else None
    window = _Window() if show else None
    lines = _open_lines(Path(jsonl), append) if jsonl else None
    annotator = annotator or (Annotator() if (sink or window) else None)
    capture.start()
    try:
        while not stop.is_set() and (max_frames is None or stats.processed < max_frames):
            frame = capture.read(timeout=0.5)
            if frame is None:
                if capture.finished:
                    break
                continue
            start = time.perf_counter()
            detections = detector.detect(frame.image)
            latency = (time.perf_counter() - start) * 1000
            stats.processed += 1
            stats.latencies_ms.append(latency)
            if lines is not None:
                lines.write(json.dumps({"timestamp": round(frame.timestamp, 3), "frame": frame.index,
                                        "latency_ms": round(latency, 2),
                                        "detections": detections.to_records()}, ensure_ascii=False) + "\n")
            if annotator is not None and (sink or window):
                fps = stats.processed / max(time.perf_counter() - stats.started, 1e-9)
                image = annotator.draw(frame.image, detections, f"{fps:4.1f} FPS  {latency:5.1f} ms  "
                                                                f"dropped {capture.dropped}")
                if sink:
                    sink.write(image)
                if window and not window.show(image):
                    break
            if on_frame is not None:
                on_frame(stats, detections)
    finally:
        stats.ended = time.perf_counter()
        capture.stop()
        stats.captured, stats.dropped, stats.reconnects = capture.captured, capture.dropped, capture.reconnects
        if sink:
            sink.close()
        if window:
            window.close()
        if lines is not None:
            lines.close()
    return stats

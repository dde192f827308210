"""Files a live run writes, made to survive what a dashcam meets: power cuts and full disks.

- ``VideoSink``: the annotated video. An ``.mkv`` (Matroska) file is written as one stream that
  stays playable up to its last written frames when the process is killed; an ``.mp4`` keeps its
  index at the end, so it is written in segments of ``segment_seconds`` (``out.mp4``,
  ``out.0001.mp4``, ...): a power cut loses at most the open segment. Before each frame the free
  space beside the file is checked: a disk that is about to fill stops the run with an error
  naming the file instead of ending "successfully" with an unplayable video.
- ``LineWriter``: JSON lines, each written whole or not at all: a write that fails (a full disk)
  is cut back to the last whole line, and the error names the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import require

__all__ = ["LineWriter", "VideoSink"]

#: Free space kept beside a video (the segment's index, written when it closes, and the file system's own needs).
VIDEO_RESERVE_BYTES = 1 << 20


class VideoSink:
    def __init__(self, path: str | Path, fps: float, segment_seconds: float = 60.0) -> None:
        if segment_seconds <= 0:
            raise ValueError(f"video segments of {segment_seconds} s: must be > 0")
        self.cv2 = require("cv2", "opencv")
        self.path, self.fps = Path(path), fps
        self.segmented = self.path.suffix.lower() != ".mkv"  # Matroska survives a kill as one file
        self.frames_per_segment = max(1, round(fps * segment_seconds))
        self.writer: Any = None  # cv2.VideoWriter once the first frame gives the size
        self.frames = 0  # in the open segment
        self.paths: list[Path] = []  # every file written, the open one last

    def _segment_path(self) -> Path:
        n = len(self.paths)
        return self.path if n == 0 else self.path.with_name(f"{self.path.stem}.{n:04d}{self.path.suffix}")

    def _open(self, image: np.ndarray) -> None:
        path = self._segment_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        height, width = image.shape[:2]
        self.writer = self.cv2.VideoWriter(str(path), self.cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        if not self.writer.isOpened():
            raise OSError(f"cannot write video {path} (OpenCV has no mp4v encoder here, or the folder is not writable)")
        self.paths.append(path)
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self.writer is not None and self.segmented and self.frames >= self.frames_per_segment:
            self.writer.release()  # a whole, playable segment
            self.writer = None
        free = shutil.disk_usage(self.path.parent if self.path.parent.exists() else Path.cwd()).free
        if free < VIDEO_RESERVE_BYTES:
            where = self.paths[-1] if self.paths else self.path
            raise OSError(
                errno.ENOSPC,
                f"disk full: {free // 1024} KiB left beside the video {where}; stopped "
                f"writing it (written so far: {', '.join(str(p) for p in self.paths) or 'nothing'})",
            )
        if self.writer is None:
            self._open(image)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class LineWriter:
    """One JSON object per line, each line whole; ``append`` keeps an existing file's lines."""

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as the video sink makes its own folder
            self._handle = open(self.path, "ab" if append else "wb", buffering=0)  # noqa: SIM115  # direct write: lines appended whole, cut back on error
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        data = memoryview((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        start = self._handle.tell()
        try:
            while data:
                data = data[self._handle.write(data) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._handle.truncate(start)  # no line cut in half: the file ends with its last whole line
            raise OSError(
                exc.errno, f"cannot write {self.path}: {exc.strerror}; it keeps its {self.lines} whole lines"
            ) from exc
        self.lines += 1

    def close(self) -> None:
        self._handle.close()

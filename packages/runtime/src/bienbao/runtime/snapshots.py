"""Event snapshots: the best frame of each confirmed sign (full frame and a crop), as JPEG files in
a bounded folder (``bienbao detect --snapshots DIR --snapshots-mb N``).

    store = SnapshotStore("/var/lib/bienbao/snapshots", limit_mb=200)
    store.observe(track_ids, scores, frame)        # every processed frame: the best frame per track
    names = store.save(event)                      # at "confirmed": {"snapshot": ..., "crop": ...}
    store.forget(event["track"])                   # at "ended"
    store.retain(live_track_ids)                   # every frame: tracks that ended unconfirmed

Each file is written under a temporary name and renamed (a kill never leaves half a JPEG), named
``<unix ms>_track<id>_<class>.jpg`` and ``..._crop.jpg``; once the folder holds more than
``limit_mb``, the oldest snapshots are removed first. The names go into the event (its MQTT
message and events.jsonl line) and the live view serves them at ``/snapshots/NAME``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from bienbao.core.files import atomic_write_bytes

from ._deps import require

__all__ = ["ClipRecorder", "SnapshotStore"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")  # what a served name may hold
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")  # what a class name contributes to one
#: a crop's margin around the sign's box, as a fraction of the box (a 12 px sign needs context)
CROP_MARGIN = 1.0


class SnapshotStore:
    def __init__(self, folder: str | Path, limit_mb: float = 200.0, quality: int = 85) -> None:
        if limit_mb <= 0:
            raise ValueError(f"snapshots: the folder limit must be > 0 MB, got {limit_mb}")
        self.cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
        self.folder, self.limit_bytes, self.quality = Path(folder), int(limit_mb * 2**20), quality
        self.folder.mkdir(parents=True, exist_ok=True)
        self._best: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}  # track -> (score, frame, box)
        self.saved = 0
        self.removed = 0

    def observe(self, track_ids: np.ndarray, scores: np.ndarray, boxes: np.ndarray, frame: np.ndarray) -> None:
        """Keep, per track, the frame where its detection scored highest (a reference, not a copy:
        the capture hands out a new array per frame)."""
        for raw, score, box in zip(track_ids, scores, boxes, strict=True):
            track = int(raw)
            if track >= 0 and float(score) > self._best.get(track, (-1.0,))[0]:
                self._best[track] = (float(score), frame, np.asarray(box, np.float32))

    def forget(self, track: int) -> None:
        self._best.pop(int(track), None)

    def retain(self, live: set[int]) -> None:
        """Drop the frames of tracks that are gone (an unconfirmed track ends without an event):
        the store holds at most one frame per live track, however long the run."""
        for track in [t for t in self._best if t not in live]:
            del self._best[track]

    def save(self, event: dict[str, Any]) -> dict[str, str]:
        """The track's best frame and crop as files; their names (empty if the track was not seen)."""
        best = self._best.get(int(event["track"]))
        if best is None:
            return {}
        _, frame, box = best
        stem = f"{int(time.time() * 1000)}_track{int(event['track'])}_{_SLUG.sub('-', str(event['name']))}"
        names = {"snapshot": f"{stem}.jpg", "crop": f"{stem}_crop.jpg"}
        for key, image in (("snapshot", frame), ("crop", self._crop(frame, box))):
            ok, data = self.cv2.imencode(".jpg", image, [self.cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise OSError(f"OpenCV could not encode the snapshot {names[key]}")
            atomic_write_bytes(self.folder / names[key], data.tobytes())
        self.saved += 1
        self._prune()
        return names

    def path(self, name: str) -> Path | None:
        """The file of a snapshot name, or None for anything that is not one of this folder's."""
        if _SAFE.sub("", name) != name or name.startswith(".") or not name.endswith((".jpg", ".mp4")):
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def _crop(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = box
        pad_x, pad_y = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
        height, width = frame.shape[:2]
        left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
        right, bottom = min(width, int(np.ceil(x2 + pad_x))), min(height, int(np.ceil(y2 + pad_y)))
        return frame[top:bottom, left:right] if right > left and bottom > top else frame

    def _prune(self) -> None:
        files = sorted(
            (p for p in self.folder.iterdir() if p.suffix in (".jpg", ".mp4") and not p.name.startswith(".")),
            key=lambda p: p.name,  # names start with the time
        )
        total = sum(p.stat().st_size for p in files)
        while files and total > self.limit_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            self.removed += 1

    def status(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "saved": self.saved, "removed": self.removed}


class ClipRecorder:
    """Short clips around each confirmation (``bienbao detect --snapshots DIR --clips SECONDS``):
    the last ``seconds`` of processed frames before it (a ring buffer of references to the frames
    the capture already made: about ``seconds x FPS x 0.7 MB`` at 640x360) and ``seconds`` after
    it, as MP4 in the snapshot folder, written under a temporary name and renamed when whole, and
    pruned with the snapshots. At most ``max_open`` clips are written at once; a confirmation past
    that gets no clip (counted in ``skipped``)."""

    def __init__(self, store: SnapshotStore, seconds: float, fps: float, max_open: int = 4) -> None:
        from collections import deque

        if not 0 < seconds <= 30:
            raise ValueError(f"--clips {seconds}: give 0 to 30 seconds (the pre-event buffer is held in memory)")
        self.store, self.fps = store, max(1.0, fps)
        self.frames = max(1, round(seconds * self.fps))
        self._ring: deque[np.ndarray] = deque(maxlen=self.frames)
        self._open: list[dict[str, Any]] = []  # {"writer", "tmp", "path", "left"}
        self.max_open, self.written, self.skipped = max_open, 0, 0

    def frame(self, image: np.ndarray) -> None:
        """Every processed frame: into the ring, and into each clip still recording."""
        self._ring.append(image)
        for clip in list(self._open):
            clip["writer"].write(image)
            clip["left"] -= 1
            if clip["left"] <= 0:
                self._finish(clip)

    def start(self, event: dict[str, Any]) -> dict[str, str]:
        """At a confirmation: a clip from the ring's frames on; its name (for the event)."""
        if len(self._open) >= self.max_open or not self._ring:
            self.skipped += 1
            return {}
        cv2 = self.store.cv2
        stem = f"{int(time.time() * 1000)}_track{int(event['track'])}_{_SLUG.sub('-', str(event['name']))}"
        path = self.store.folder / f"{stem}.mp4"
        tmp = self.store.folder / f".{stem}.mp4.partial.mp4"
        height, width = self._ring[0].shape[:2]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"cannot write the clip {path} (OpenCV has no mp4v encoder here)")
        for image in self._ring:
            writer.write(image)
        self._open.append({"writer": writer, "tmp": tmp, "path": path, "left": self.frames})
        return {"clip": path.name}

    def _finish(self, clip: dict[str, Any]) -> None:
        clip["writer"].release()
        clip["tmp"].replace(clip["path"])  # whole, then visible under its name
        self._open.remove(clip)
        self.written += 1
        self.store._prune()

    def status(self) -> dict[str, Any]:
        return {"written": self.written, "recording": len(self._open), "skipped": self.skipped}

    def close(self) -> None:
        """The end of the run: clips still recording end with the frames they have."""
        for clip in list(self._open):
            self._finish(clip)

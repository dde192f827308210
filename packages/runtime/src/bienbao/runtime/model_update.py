"""Model updates on a running board: ``bienbao detect MODEL --model-dir DIR``.

A fleet server (or a person) drops a new model into ``DIR`` with a manifest, written last:

    DIR/manifest.json   {"model": "yolov8n-vn-signs-int8-2027-01.onnx", "sha256": "<64 hex digits>"}
    DIR/yolov8n-vn-signs-int8-2027-01.onnx   (with its .json sidecar where the format needs one)

``ModelWatcher`` polls the manifest from its own thread; when it names a file other than the one
running, it checks the file's SHA-256 against the manifest, loads it into a new ``Detector`` (the
metadata read and checked against the network's output, as at start-up) and offers it. The
detection loop takes it between two frames (``take()``, never blocking), so no frame is lost and
none is half processed by each model. A candidate that fails any check is refused with its
reason and the running model stays; the same manifest is not retried until it changes. Unlike
DeepStream's on-the-fly update, the input size and the class list may change: the loop ends the
old model's tracks and starts a tracker for the new classes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bienbao.core.files import file_sha256

__all__ = ["MANIFEST", "ModelWatcher"]

MANIFEST = "manifest.json"


class ModelWatcher:
    def __init__(
        self,
        folder: str | Path,
        load: Callable[[Path], Any],
        running_sha256: str,
        on_status: Callable[[str], None] | None = None,
        interval: float = 2.0,
    ) -> None:
        """``load(path)`` builds a ``Detector`` (raising on anything wrong with the file);
        ``running_sha256`` is the model running now (a manifest naming it is not an update)."""
        self.folder, self._load, self.interval = Path(folder), load, interval
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--model-dir {self.folder}: no such folder")
        self.running_sha256 = running_sha256
        self._say = on_status or (lambda text: None)
        self._ready: tuple[Any, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None  # the manifest (mtime, size) last looked at
        self.refused = 0
        self.swapped = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bienbao-model-watch", daemon=True)

    def start(self) -> ModelWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def take(self) -> tuple[Any, dict[str, Any]] | None:
        """The new detector and its switch event, once, if one is ready (the loop, between frames)."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            self.running_sha256 = ready[1]["sha256"]
            self.swapped += 1
        return ready

    def check(self) -> None:
        """One look at the manifest (the thread calls this every ``interval`` seconds)."""
        manifest = self.folder / MANIFEST
        try:
            stat = manifest.stat()
        except FileNotFoundError:
            return
        seen = (stat.st_mtime, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            candidate, expected = self._read(manifest)
            if expected == self.running_sha256:
                return
            actual = file_sha256(candidate)
            if actual != expected:
                raise ValueError(f"{candidate.name}: SHA-256 {actual[:16]}... is not the manifest's {expected[:16]}...")
            detector = self._load(candidate)
        except Exception as exc:  # any reason a candidate cannot run: refuse it, keep the running model
            self.refused += 1
            self.last_error = str(exc)
            self._say(f"model update refused, the running model stays: {exc}")
            return
        event = {
            "event": "model",
            "file": candidate.name,
            "sha256": expected,
            "previous_sha256": self.running_sha256,
            "classes": len(detector.names),
            "input": f"{detector.input_size[1]}x{detector.input_size[0]}",
            "time": round(time.time(), 3),
        }
        with self._lock:
            self._ready = (detector, event)
        self._say(f"model update ready: {candidate.name} ({event['classes']} classes, {event['input']})")

    def _read(self, manifest: Path) -> tuple[Path, str]:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            name, sha256 = str(data["model"]), str(data["sha256"]).lower()
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'{manifest}: expected {{"model": FILE, "sha256": HEX}} ({exc})') from exc
        if Path(name).name != name or len(sha256) != 64:
            raise ValueError(f"{manifest}: model must be a file name in the folder and sha256 64 hex digits")
        candidate = self.folder / name
        if not candidate.is_file():
            raise FileNotFoundError(f"{candidate}: named by the manifest, not there")
        return candidate, sha256

    def _run(self) -> None:
        self.check()  # at start too: a manifest already waiting is looked at at once
        while not self._stop.wait(self.interval):
            self.check()

    def status(self) -> dict[str, Any]:
        return {"swapped": self.swapped, "refused": self.refused, "last_error": self.last_error}

"""Always-fresh frames: a capture thread that keeps only the newest frame.

The consumer (inference) takes whatever frame is newest; frames captured while it was busy are
dropped and counted, so a slow model skips frames instead of lagging further and further behind
the camera. A live source that stops delivering (a camera unplugged, a stream that stalls) is
reopened with exponential back-off; a file ends at its last frame (read at its own frame rate when
``realtime``, as a camera would deliver it, or every frame in order when not).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._deps import require
from .sources import Source

__all__ = ["Frame", "LatestFrameCapture"]


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    index: int  # the frame's number since the start (counting dropped ones)
    timestamp: float  # time.time() when it was captured


STREAM_TIMEOUT_MS = 5000  # a stalled RTSP/HTTP stream's read fails after this, and is reopened


def _has_gstreamer(cv2: Any) -> bool:
    """Whether this OpenCV build has its GStreamer video I/O backend (what CSI cameras need)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip().upper().startswith("YES")
    return False


def _open_with_cv2(source: Source) -> Any:
    cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
    if source.kind == "stream":
        capture = cv2.VideoCapture(
            source.target,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS],
        )
    else:
        capture = cv2.VideoCapture(*source.open_args())
    if not capture.isOpened():
        if source.kind == "csi" and not _has_gstreamer(cv2):
            raise OSError(
                "cannot open the CSI camera: this OpenCV was built without GStreamer (pip's opencv-python is); "
                "use JetPack's system OpenCV (python3-opencv, a venv made with --system-site-packages)"
            )
        raise OSError(f"cannot open video source {source.label!r}")
    return capture


class LatestFrameCapture:
    def __init__(
        self,
        source: Source,
        realtime: bool = True,
        opener: Callable[[Source], Any] = _open_with_cv2,
        max_backoff: float = 8.0,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        """``opener(source)`` returns an object with OpenCV's ``read``/``get``/``release``;
        ``on_status(message)`` hears of a lost source, each retry and the recovery."""
        self._on_status = on_status or (lambda message: None)
        self.source = source
        self.realtime = realtime or source.live
        self._opener = opener
        self._max_backoff = max_backoff
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._finished = False
        self.captured = self.dropped = self.reconnects = 0  # reconnects: outages, however many attempts each took
        self.reconnect_attempts = 0
        self.stalls = 0  # times the producer waited a whole timeout for the consumer (a slow model)
        self.backoff_delays: list[float] = []  # the waits between failed reopen attempts
        self.down_since: float | None = None  # time.time() when the source was lost, while it is down
        self.error: str | None = None
        self._capture = opener(source)  # fail fast: a source that never opens is an error now
        fps = self._capture.get(5)  # cv2.CAP_PROP_FPS
        self.fps = fps if fps and fps > 0 else 30.0
        self._thread = threading.Thread(target=self._run, name="bienbao-capture", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LatestFrameCapture:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        self._thread.join(timeout=5)
        if self._capture is not None:
            self._capture.release()

    @property
    def finished(self) -> bool:
        """True once a file has ended (or the capture was stopped) and its last frame was taken."""
        with self._condition:
            return self._finished and self._latest is None

    # -- consumer ------------------------------------------------------------------------------
    def read(self, timeout: float = 1.0) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout``; ``None`` if none came."""
        with self._condition:
            if self._latest is None and not self._finished:
                self._condition.wait(timeout)
            frame, self._latest = self._latest, None
            if frame is not None:
                self._condition.notify_all()  # a file read in order waits for this to send the next frame
            return frame

    # -- producer ------------------------------------------------------------------------------
    def _publish(self, image: np.ndarray) -> None:
        with self._condition:
            if self._latest is not None:
                self.dropped += 1
            self._latest = Frame(image, self.captured, time.time())
            self.captured += 1
            self._condition.notify_all()

    def _wait_until_taken(self) -> None:
        """Files read as fast as possible must not drop frames: wait until the consumer took it
        (``read`` wakes this at once; the timeout only re-checks a stop)."""
        with self._condition:
            while self._latest is not None and not self._stop.is_set():
                if not self._condition.wait(0.1):
                    self.stalls += 1

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_time = time.monotonic()
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if ok and image is not None:
                self._publish(image)
                if not self.realtime:
                    self._wait_until_taken()
                elif not self.source.live:  # a file played as a camera would deliver it
                    next_time += period
                    time.sleep(max(0.0, next_time - time.monotonic()))
                continue
            if not self.source.live:
                break  # end of file
            self._reconnect()
        with self._condition:
            self._finished = True
            self._condition.notify_all()

    def _reconnect(self) -> None:
        """Reopen a live source that stopped delivering, backing off 0.5 s, 1 s, 2 s ... max_backoff.
        One outage counts once in ``reconnects``, whatever the number of attempts."""
        self._capture.release()
        self.reconnects += 1
        self.down_since = time.time()
        lost = time.strftime("%H:%M:%S", time.localtime(self.down_since))
        self._on_status(f"source {self.source.label!r} lost at {lost}: reconnecting")
        delay, attempt = 0.5, 0
        while not self._stop.is_set():
            attempt += 1
            self.reconnect_attempts += 1
            try:
                self._capture = self._opener(self.source)
                self._on_status(
                    f"source {self.source.label!r} back after {time.time() - (self.down_since or time.time()):.1f} s "
                    f"({attempt} attempt{'s' if attempt > 1 else ''})"
                )
                self.down_since = None
                return
            except OSError as exc:
                self.error = str(exc)
                self._on_status(
                    f"source {self.source.label!r} down since {lost} (attempt {attempt} failed: {exc}; "
                    f"next in {delay:g} s)"
                )
                self.backoff_delays.append(delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_backoff)

"""The live detection loop: newest frame -> detect -> track -> outputs, until the source ends or a stop.

Outputs are optional and independent: an on-screen window, an annotated video file, JSON lines
(one line per processed frame: timestamp, frame index, latency, detections with their track ids),
confirmed sign events (``SignTracker``: one JSON line when a sign is confirmed and one when it
leaves), a browser view (``LiveView``) and an MQTT feed (``MqttPublisher``). Each JSON line is
written whole and flushed; the video writer is released on every exit path, so Ctrl-C or SIGTERM
leave a playable video and complete JSON lines. The overlay is drawn only when something shows it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ._deps import require
from .backends import backend_label
from .capture import LatestFrameCapture
from .detector import Detector
from .draw import Annotator
from .names import display_name
from .sinks import LineWriter, VideoSink
from .tracking import SignTracker

__all__ = ["LiveOutputs", "LiveStats", "OutputError", "run_live"]

STAGES = ("preprocess", "inference", "postprocess", "total")


def _p50_p95(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values or [0.0])
    return {"p50": round(float(np.percentile(array, 50)), 2), "p95": round(float(np.percentile(array, 95)), 2)}


class OutputError(OSError):
    """An output of a live run could not be written; ``stats`` holds what the run did until then."""

    def __init__(self, code: int | None, message: str, stats: LiveStats) -> None:
        super().__init__(code, message)
        self.stats = stats

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@dataclass
class LiveStats:
    processed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ended: float = 0.0
    dropped: int = 0
    captured: int = 0
    reconnects: int = 0
    events: int = 0  # confirmed signs
    # the last frames' stage times (ms) and end times, for the live figures
    recent: deque[Any] = field(default_factory=lambda: deque(maxlen=300))

    def record(self, stages_s: tuple[float, float, float]) -> float:
        """One processed frame's stage times (seconds); its end-to-end latency in ms."""
        pre, infer, post = (1000 * t for t in stages_s)
        total = pre + infer + post
        self.processed += 1
        self.latencies_ms.append(total)
        self.recent.append((pre, infer, post, total, time.perf_counter()))
        return total

    def stages(self) -> dict[str, dict[str, float]]:
        """p50/p95 of each stage over the recent frames."""
        columns: list[tuple[Any, ...]] = list(zip(*self.recent, strict=True)) if self.recent else [()] * 5
        return {name: _p50_p95(list(columns[i])) for i, name in enumerate(STAGES)}

    def recent_fps(self) -> float:
        if len(self.recent) < 2:
            return 0.0
        span = self.recent[-1][4] - self.recent[0][4]
        return round((len(self.recent) - 1) / span, 2) if span > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        elapsed = max((self.ended or time.perf_counter()) - self.started, 1e-9)
        latencies = np.asarray(self.latencies_ms or [0.0])
        return {
            "frames_processed": self.processed,
            "frames_captured": self.captured,
            "frames_dropped": self.dropped,
            "reconnects": self.reconnects,
            "latency_mean_ms": round(float(latencies.mean()), 2),
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 2),
            "fps": round(self.processed / elapsed, 2),
            "seconds": round(elapsed, 2),
            "events": self.events,
        }


class _Window:
    def __init__(self) -> None:
        self.cv2 = require("cv2", "opencv")

    def show(self, image: np.ndarray) -> bool:
        """False when the user closed the window or pressed q/Esc."""
        self.cv2.imshow("bienbao", image)
        return (self.cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        self.cv2.destroyAllWindows()


@dataclass
class LiveOutputs:
    """Where a live run's results go; every field is optional."""

    video: str | Path | None = None  # .mkv: one file that survives a kill; .mp4: segments
    video_segment_seconds: float = 60.0
    jsonl: str | Path | None = None
    events: str | Path | None = None
    append: bool = False  # JSON lines and events after an existing file's (a restarted service)
    show: bool = False
    view: Any = None  # a started LiveView
    publisher: Any = None  # an MqttPublisher
    publish_detections: bool = False  # also send each frame's detections (frames with any)
    snapshots: Any = None  # a SnapshotStore: each confirmed sign's best frame and crop
    clips: Any = None  # a ClipRecorder: a short clip around each confirmation
    model_watcher: Any = None  # a ModelWatcher: a new model taken between two frames
    gps: Any = None  # an NmeaReader: events carry the fix where the receiver has one


def _status_lines(tracker: SignTracker, annotator: Annotator) -> tuple[str, ...]:
    lines = []
    if tracker.speed_limit:
        lines.append(f"limit: {annotator.name(tracker.speed_limit)}")
    current = tracker.current()
    if current:
        lines.append("in view: " + ", ".join(f"#{c['track']} {annotator.name(c['name'])}" for c in current[:3]))
    return tuple(lines)


def _view_stats(
    detector: Detector,
    stats: LiveStats,
    capture: LatestFrameCapture,
    tracker: SignTracker,
    publisher: Any,
    snapshots: Any = None,
    clips: Any = None,
) -> dict[str, Any]:
    current = [{**c, "display_name": display_name(c["name"])} for c in tracker.current()]
    return {
        "backend": backend_label(detector.backend),
        "input": f"{detector.input_size[1]}x{detector.input_size[0]}",
        "frames_processed": stats.processed,
        "fps": stats.recent_fps(),
        "frames_dropped": capture.dropped,
        "reconnects": capture.reconnects,
        "source_down_since": capture.down_since,
        "stages_ms": stats.stages(),
        "events": stats.events,
        "current": current,
        "speed_limit": tracker.speed_limit,
        "speed_limit_name": display_name(tracker.speed_limit) if tracker.speed_limit else None,
        "publish": publisher.status() if publisher is not None else None,
        "snapshots": snapshots.status() if snapshots is not None else None,
        "clips": clips.status() if clips is not None else None,
    }


class _OpenOutputs:
    """A run's outputs, opened: one call per frame and per batch of events, one ``close``."""

    def __init__(self, outputs: LiveOutputs, fps: float, annotator: Annotator | None) -> None:
        self.outputs, self.view, self.publisher = outputs, outputs.view, outputs.publisher
        self.sink = VideoSink(outputs.video, fps, outputs.video_segment_seconds) if outputs.video else None
        self.window = _Window() if outputs.show else None
        self.lines = LineWriter(outputs.jsonl, outputs.append) if outputs.jsonl else None
        self.event_lines = LineWriter(outputs.events, outputs.append) if outputs.events else None
        self.annotator = annotator or (Annotator() if (self.sink or self.window) else None)
        # the live view draws in the server's thread: its own annotator (a font is not shared across threads)
        self.view_annotator = None
        if self.view is not None:
            self.view_annotator = Annotator(annotator.vietnamese, annotator.font_path) if annotator else Annotator()
        self._view_updated = 0.0

    def observe(self, frame: Any, detections: Any, update: Any, tracker: SignTracker) -> None:
        """Every processed frame, before its events: the best frame per track, the clips' frames."""
        store, clips = self.outputs.snapshots, self.outputs.clips
        if store is not None:
            store.observe(update.track_ids, detections.scores, detections.boxes, frame.image)
            store.retain({track.id for track in tracker.tracks})
        if clips is not None:
            clips.frame(frame.image)

    @property
    def metrics(self) -> Any:
        """The view's LiveMetrics (read each frame: it may be attached after the loop started)."""
        return getattr(self.view, "metrics", None)

    def emit(self, events: list[dict[str, Any]]) -> None:
        store, gps = self.outputs.snapshots, self.outputs.gps
        fix = gps.fix() if gps is not None and events else None
        if fix is not None:  # where it was seen; no field at all without a fresh, valid fix
            events[:] = [{**event, "gps": fix} for event in events]
        for index, raw in enumerate(events):
            event = raw
            if store is not None and raw["event"] == "confirmed":  # names of its files go with it
                clip = self.outputs.clips.start(raw) if self.outputs.clips is not None else {}
                event = events[index] = {**raw, **store.save(raw), **clip}
            elif store is not None and raw["event"] == "ended":
                store.forget(raw["track"])
            if self.event_lines is not None:
                self.event_lines.write(event)
            if self.publisher is not None:
                self.publisher.publish("event", event)

    def frame(self, frame: Any, detections: Any, update: Any, latency: float, overlay: str, status: Any) -> bool:
        """Everything one processed frame goes to; False when the user closed the window."""
        publish = self.publisher is not None and self.outputs.publish_detections and len(detections)
        if self.lines is not None or publish:
            records = [
                {**record, "track": int(track)}
                for record, track in zip(detections.to_records(), update.track_ids, strict=True)
            ]
            if self.lines is not None:
                self.lines.write(
                    {
                        "timestamp": round(frame.timestamp, 3),
                        "frame": frame.index,
                        "latency_ms": round(latency, 2),
                        "detections": records,
                    }
                )
            if publish:
                self.publisher.publish(
                    "detections", {"timestamp": round(frame.timestamp, 3), "frame": frame.index, "detections": records}
                )
        wants_view = self.view is not None and self.view.wants_frame()
        image = None
        if self.sink or self.window:
            image = cast(Annotator, self.annotator).draw(  # set whenever there is a sink or a window
                frame.image,
                detections,
                overlay,
                track_ids=update.track_ids,
                confirmed=update.confirmed,
                status=status(cast(Annotator, self.annotator)),
            )
            if self.sink:
                self.sink.write(image)
        if wants_view:
            if image is not None:
                self.view.offer(lambda: image)
            else:  # drawn later, by the server's thread, only if a client takes it
                pen = cast(Annotator, self.view_annotator)  # built whenever there is a view
                lines = status(pen)
                self.view.offer(
                    lambda: pen.draw(
                        frame.image,
                        detections,
                        overlay,
                        track_ids=update.track_ids,
                        confirmed=update.confirmed,
                        status=lines,
                    )
                )
        return not self.window or self.window.show(cast(np.ndarray, image))  # drawn: there is a window

    def emit_model(self, event: dict[str, Any]) -> None:
        """A model switch: a line in the events file and a message of its own kind on the feed."""
        if self.event_lines is not None:
            self.event_lines.write(event)
        if self.publisher is not None:
            self.publisher.publish("model", event)

    def update_view(self, stats: Callable[[], dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """The view's figures, at most 4 times a second (the page polls once a second); events always."""
        now = time.monotonic()
        if events or now - self._view_updated >= 0.25:
            self.view.update(stats(), [{**event, "display_name": display_name(event["name"])} for event in events])
            self._view_updated = now

    def finish(self, tracker: SignTracker, stats: LiveStats, failed: bool) -> None:
        """The end of a run: the signs still in view end with it, and everything is closed. After
        a failure (already being raised) nothing more is written and a second error is not raised."""
        try:
            if not failed:
                self.emit(tracker.flush())  # "ended" events only: the count of confirmed signs is final
        finally:
            try:
                self.close()
            except OSError:
                if not failed:
                    raise

    def close(self) -> None:
        """Close everything, each even if another fails; the first failure is raised after."""
        failure = None
        for output in (self.sink, self.window, self.lines, self.event_lines, self.outputs.clips):
            if output is not None:
                try:
                    output.close()
                except OSError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure


def _switch_model(
    watcher: Any, opened: _OpenOutputs, detector: Detector, tracker: SignTracker
) -> tuple[Detector, SignTracker]:
    """Between two frames: a new model, if the watcher has one ready. The old model's tracks end
    (their "ended" events), the switch is an event of its own, and a tracker for the new class
    list takes over (the count of confirmed signs carries on)."""
    ready = watcher.take()
    if ready is None:
        return detector, tracker
    new, event = ready
    opened.emit(tracker.flush())
    fresh = SignTracker(tracker.config, new.names)
    fresh.confirmed_count, fresh.next_id = tracker.confirmed_count, tracker.next_id
    opened.emit_model(event)
    return new, fresh


def run_live(
    detector: Detector,
    capture: LatestFrameCapture,
    stop: threading.Event,
    *,
    video: str | Path | None = None,
    jsonl: str | Path | None = None,
    show: bool = False,
    annotator: Annotator | None = None,
    max_frames: int | None = None,
    on_frame: Callable[..., Any] | None = None,
    append: bool = False,
    outputs: LiveOutputs | None = None,
    tracker: SignTracker | None = None,
) -> LiveStats:
    """Run until the source ends, ``stop`` is set or ``max_frames`` were processed. ``outputs``
    (or the shorthand ``video``/``jsonl``/``show``/``append``) says where results go; the tracker
    is built from the model's names when not given."""
    outputs = outputs or LiveOutputs(video=video, jsonl=jsonl, show=show, append=append)
    stats = LiveStats()
    tracker = tracker or SignTracker(names=detector.names)
    opened = _OpenOutputs(outputs, capture.fps, annotator)
    capture.start()
    failed = True  # until the loop ends normally
    try:
        while not stop.is_set() and (max_frames is None or stats.processed < max_frames):
            frame = capture.read(timeout=0.5)
            if frame is None:
                if capture.finished:
                    break
                continue
            if outputs.model_watcher is not None:
                detector, tracker = _switch_model(outputs.model_watcher, opened, detector, tracker)
            detections, stages = detector.detect_timed(frame.image)
            latency = stats.record(stages)
            update = tracker.update(detections, frame.timestamp, frame.index)
            opened.observe(frame, detections, update, tracker)
            metrics = opened.metrics
            if metrics is not None:
                metrics.observe_frame(stages, detections.labels)
                metrics.observe_events(update.events)
            opened.emit(update.events)
            stats.events = tracker.confirmed_count
            overlay = f"{stats.recent_fps():4.1f} FPS  {latency:5.1f} ms  dropped {capture.dropped}"
            if not opened.frame(
                frame,
                detections,
                update,
                latency,
                overlay,
                functools.partial(_status_lines, tracker),
            ):
                break
            if outputs.view is not None:
                opened.update_view(
                    functools.partial(
                        _view_stats,
                        detector,
                        stats,
                        capture,
                        tracker,
                        outputs.publisher,
                        outputs.snapshots,
                        outputs.clips,
                    ),
                    update.events,
                )
            if on_frame is not None:
                on_frame(stats, detections)
    except OSError as exc:  # an output cannot be written (a full disk): stop, keep what is whole, report once
        raise OutputError(exc.errno, str(exc), stats) from exc
    else:
        failed = False
    finally:
        stats.ended = time.perf_counter()
        capture.stop()
        stats.captured, stats.dropped, stats.reconnects = capture.captured, capture.dropped, capture.reconnects
        opened.finish(tracker, stats, failed)
    return stats

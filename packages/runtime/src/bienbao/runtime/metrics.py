"""Prometheus metrics and a health verdict for a live run (``bienbao detect --serve``).

    metrics = LiveMetrics(model="yolov8n.onnx", model_hash="3f2a...", backend="onnxruntime")
    metrics.observe_frame(stages_s, class_names)     # the detection loop, once per processed frame
    metrics.observe_events(events)                   # ... and per batch of tracker events
    metrics.update(view_stats)                       # the figures the live view shows (<= 4 Hz)
    metrics.exposition()                             # the text /metrics serves
    metrics.health()                                 # (True, "...") while frames flow

Counters and histograms are kept by ``prometheus-client`` in a registry of this run's own (no
process-wide default, so two runs in one process do not mix); the figures the loop already
computes for the live view (dropped frames, reconnects, the feed's queue) are read at scrape time.
Names follow Prometheus' conventions: ``bienbao_`` prefix, seconds, ``_total`` for counters.

Health (``/healthz``): unhealthy when the source is down (a camera reconnecting) or when no frame
was processed for ``stall_seconds`` (inference stalled, or the loop is gone); the reason says
which and since when. A run that has not processed its first frame yet gets ``startup_seconds``.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ._deps import require

__all__ = ["LiveMetrics", "cpu_temperature"]

#: stage-latency buckets, seconds: 1 ms to 1 s (an INT8 nano model takes 5-50 ms on a CPU board)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
STAGE_NAMES = ("preprocess", "inference", "postprocess")


def cpu_temperature() -> float | None:
    """The hottest thermal zone in °C where Linux exposes one (boards do; many VMs do not)."""
    readings = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        try:
            with open(path, encoding="ascii") as handle:
                readings.append(int(handle.read().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(readings) if readings else None


class LiveMetrics:
    def __init__(
        self,
        model: str = "",
        model_hash: str = "",
        backend: str = "",
        stall_seconds: float = 10.0,
        startup_seconds: float = 60.0,
    ) -> None:
        client = require("prometheus_client", "serve")
        self._client = client
        self.registry = client.CollectorRegistry(auto_describe=True)
        self.stall_seconds, self.startup_seconds = stall_seconds, startup_seconds
        self.started = time.monotonic()
        self.last_frame: float | None = None  # time.monotonic() of the last processed frame
        self._stats: dict[str, Any] = {}
        r = self.registry
        self.frames = client.Counter("bienbao_frames_processed", "Frames run through the detector", registry=r)
        self.stage = client.Histogram(
            "bienbao_stage_seconds", "Per-frame time of each stage", ["stage"], buckets=BUCKETS, registry=r
        )
        self.latency = client.Histogram(
            "bienbao_frame_latency_seconds", "Per-frame end-to-end time", buckets=BUCKETS, registry=r
        )
        self.detections = client.Counter("bienbao_detections", "Detections by class", ["sign"], registry=r)
        self.events = client.Counter(
            "bienbao_events", "Tracker events by kind and class", ["event", "sign"], registry=r
        )
        info = client.Info("bienbao_model", "The model this run detects with", registry=r)
        info.info({"file": model, "sha256_16": model_hash, "backend": backend})
        gauge = client.Gauge
        self.fps = gauge("bienbao_fps", "Frames processed per second, recent", registry=r)
        self.dropped = gauge("bienbao_frames_dropped", "Frames the capture dropped (newest kept), in all", registry=r)
        self.reconnects = gauge("bienbao_source_reconnects", "Times the video source was reopened", registry=r)
        self.source_up = gauge("bienbao_source_up", "1 while the video source delivers, 0 while it is down", registry=r)
        self.queued = gauge("bienbao_feed_queued", "Fleet feed messages waiting on disk", registry=r)
        self.queue_dropped = gauge(
            "bienbao_feed_dropped", "Fleet feed messages dropped (queue full), in all", registry=r
        )
        self.feed_up = gauge("bienbao_feed_connected", "1 while the MQTT broker is connected", registry=r)
        self.temperature = gauge("bienbao_cpu_temperature_celsius", "Hottest thermal zone, where readable", registry=r)

    # -- the detection loop's side (cheap: a few counters per frame) --------------------------
    def observe_frame(self, stages_s: Sequence[float], names: Iterable[str]) -> None:
        self.last_frame = time.monotonic()
        self.frames.inc()
        for stage, seconds in zip(STAGE_NAMES, stages_s, strict=True):
            self.stage.labels(stage).observe(seconds)
        self.latency.observe(sum(stages_s))
        for name in names:
            self.detections.labels(name).inc()

    def observe_events(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.events.labels(str(event.get("event", "")), str(event.get("name", ""))).inc()

    def update(self, stats: dict[str, Any]) -> None:
        """The live view's figures (``bienbao.runtime.live``'s view stats)."""
        self._stats = dict(stats)

    # -- the server's side ------------------------------------------------------------------------
    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        stats = self._stats
        self.fps.set(float(stats.get("fps") or 0.0))
        self.dropped.set(float(stats.get("frames_dropped") or 0))
        self.reconnects.set(float(stats.get("reconnects") or 0))
        self.source_up.set(0.0 if stats.get("source_down_since") else 1.0)
        feed = stats.get("publish") or {}
        self.queued.set(float(feed.get("queued") or 0))
        self.queue_dropped.set(float(feed.get("dropped") or 0))
        self.feed_up.set(1.0 if feed.get("connected") else 0.0)
        temperature = cpu_temperature()
        if temperature is not None:
            self.temperature.set(temperature)
        return self._client.generate_latest(self.registry), self._client.CONTENT_TYPE_LATEST

    def health(self) -> tuple[bool, str]:
        """(healthy, reason): frames flow, or why not."""
        now = time.monotonic()
        down_since = self._stats.get("source_down_since")
        if down_since:
            return False, f"source down since {time.strftime('%H:%M:%S', time.localtime(down_since))} (reconnecting)"
        if self.last_frame is None:
            waited = now - self.started
            if waited > self.startup_seconds:
                return False, f"no frame processed in the {waited:.0f} s since the start"
            return True, f"starting ({waited:.0f} s, no frame yet)"
        idle = now - self.last_frame
        if idle > self.stall_seconds:
            return False, f"no frame processed for {idle:.1f} s (inference stalled or the loop stopped)"
        return True, f"frames flow (last {idle:.2f} s ago)"

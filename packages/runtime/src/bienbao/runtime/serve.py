"""A live view in the browser for a headless board: ``bienbao detect ... --serve HOST:PORT``.

Standard library only (``http.server``, one thread per client); OpenCV encodes the JPEGs.

    /             a small page: the annotated stream, the live figures, the signs in view, events
    /stream.mjpg  the annotated frames as MJPEG (multipart/x-mixed-replace)
    /frame.jpg    the newest annotated frame (a fresh one is asked for; ``X-Frame-Age`` says its age in s)
    /stats.json   FPS, per-stage latency p50/p95, dropped frames, backend, signs, recent events
    /metrics      Prometheus metrics (``metrics``: a ``bienbao.runtime.metrics.LiveMetrics``)
    /snapshots/N  an event's snapshot (``snapshots``: a ``bienbao.runtime.snapshots.SnapshotStore``)
    /healthz      200 while frames flow, 503 with the reason when the source is down or inference
                  stalls; open without the token on a loopback bind (for the service manager)

The detection loop never waits for the server: it asks ``wants_frame()`` (true only while a stream
client is connected and the capped rate allows a frame) and only then hands over a ``render``
callable (the frame, its detections and overlay text, not yet drawn) with ``offer``; a client's
thread draws and encodes it, once per frame whatever the number of clients, not the loop.
Binds to 127.0.0.1 unless told otherwise; with ``token`` every request needs ``?token=...`` or an
``Authorization: Bearer ...`` header.

What a network may do to it: a client that connects and says nothing, or stops reading, is cut
after ``timeout`` seconds; past ``max_connections`` open connections a new one gets a 503 and is
closed (so idle sockets cannot use up the board's file descriptors or starve real viewers); a
client that hangs up is counted (``client_errors``), never a traceback; on a loopback address
the ``Host`` header must name the loopback (a page on another site that rebinds its DNS name to
127.0.0.1 gets a 403). IPv6 addresses (``::1``, ``::``) work as IPv4 ones do.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np

from ._deps import require

__all__ = ["LiveView", "parse_serve_address"]

PAGE = Path(__file__).with_name("live_view.html")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _BoundedServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` at once (a 503 past that), quiet
    about clients that hang up or time out; IPv6 when the host is an IPv6 address."""

    daemon_threads = True
    max_connections = 32
    request_queue_size = (
        128  # the listen backlog: a burst of connections is accepted (and answered), not left in SYN retries
    )

    def __init__(self, address: tuple[str, int], handler: Any, view: LiveView) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.view, self.active = view, 0
        self._count_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self.active >= self.max_connections
            if not full:
                self.active += 1
        if full:
            self.view.refused_connections += 1
            with contextlib.suppress(OSError):  # a few bytes into an empty send buffer: never blocks
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.active -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], OSError):  # hung up, reset, timed out: the client's doing
            self.view.client_errors += 1
            return
        super().handle_error(request, client_address)  # a bug: its traceback


def parse_serve_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); a clear error for anything else."""
    host, _, port = text.rpartition(":") if ":" in text else ("", "", text)
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--serve {text!r}: expected HOST:PORT, :PORT or PORT (e.g. 127.0.0.1:8080)")
    return host, int(port)


class LiveView:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        token: str | None = None,
        max_fps: float = 5.0,
        quality: int = 80,
        recent_events: int = 50,
        timeout: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        if max_fps <= 0:
            raise ValueError(f"live view: max_fps must be > 0, got {max_fps}")
        if timeout <= 0 or max_connections < 1:
            raise ValueError(
                f"live view: timeout must be > 0 and max_connections >= 1, got {timeout}, {max_connections}"
            )
        self.timeout = timeout
        self.refused_connections = 0  # past max_connections
        self.client_errors = 0  # clients that hung up or timed out
        self._offered_at = 0.0  # time.time() of the newest frame offered
        self._still_wanted = False  # a /frame.jpg request waits for a fresh frame
        self.cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
        self.token, self.min_interval, self.quality = token, 1.0 / max_fps, quality
        self._lock = threading.Condition()
        self._encode_lock = threading.Lock()
        self._render: Callable[[], np.ndarray] | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._last_offer = 0.0
        self._stats: dict[str, Any] = {}
        self.info: dict[str, Any] = {}  # fixed facts shown on the page (model file, its hash)
        self.metrics: Any = None  # a LiveMetrics: /metrics and /healthz
        self.snapshots: Any = None  # a SnapshotStore: /snapshots/NAME
        self._events: deque[dict[str, Any]] = deque(maxlen=recent_events)
        self._closing = False
        self.stream_clients = 0
        self.frames_encoded = 0
        self.frames_streamed = 0
        try:
            self.server = _BoundedServer((host, port), self._handler(), self)
        except OSError as exc:
            raise OSError(f"--serve {host}:{port}: cannot listen there ({exc.strerror or exc})") from exc
        self.server.max_connections = max_connections
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="bienbao-serve", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LiveView:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._thread.is_alive():  # shutdown() waits for serve_forever: only when it runs
            self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={quote(self.token)}" if self.token else "")

    @property
    def exposed(self) -> bool:
        return self.host not in LOOPBACK

    # -- the detection loop's side -------------------------------------------------------------
    def wants_frame(self) -> bool:
        """True when a /frame.jpg request waits, or a stream client is connected and the capped
        rate allows another frame."""
        if self._still_wanted:
            return True
        return self.stream_clients > 0 and time.monotonic() - self._last_offer >= self.min_interval

    def offer(self, render: Callable[[], np.ndarray]) -> None:
        """The newest frame, as a callable that draws it (called at most once, in a client's thread;
        it must not depend on anything the loop changes afterwards)."""
        with self._lock:
            self._render, self._seq, self._last_offer = render, self._seq + 1, time.monotonic()
            self._offered_at, self._still_wanted = time.time(), False
            self._lock.notify_all()

    def update(self, stats: dict[str, Any], events: Sequence[dict[str, Any]] = ()) -> None:
        with self._lock:
            self._stats = dict(stats)
            self._events.extend(events)
        if self.metrics is not None:
            self.metrics.update(stats)

    # -- the server's side ---------------------------------------------------------------------
    def _jpeg_of(self, seq: int) -> tuple[int, bytes]:
        """The newest frame's number and JPEG (frame ``seq`` or a newer one), encoded once
        whatever the number of clients."""
        with self._encode_lock:  # one client draws and encodes; the others wait for its result
            with self._lock:
                if self._jpeg[0] >= seq:
                    return self._jpeg
                render, seq = self._render, self._seq
            if render is None:  # no frame offered yet: the newest (empty) one
                return self._jpeg
            ok, data = self.cv2.imencode(".jpg", render(), [self.cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise OSError("OpenCV could not encode the frame as JPEG")
            with self._lock:
                self._jpeg = (seq, data.tobytes())
                self.frames_encoded += 1
                return self._jpeg

    def _next_frame(self, after: int, timeout: float = 1.0) -> int | None:
        with self._lock:
            if self._seq == after and not self._closing:
                self._lock.wait(timeout)
            return None if self._closing or self._seq in (after, 0) else self._seq

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.info,
                **self._stats,
                "events": list(self._events)[::-1],
                "stream": {
                    "clients": self.stream_clients,
                    "client_errors": self.client_errors,
                    "refused_connections": self.refused_connections,
                    "frames_streamed": self.frames_streamed,
                    "frames_encoded": self.frames_encoded,
                    "max_fps": round(1 / self.min_interval, 2),
                },
            }

    def _still(self, wait: float = 1.0) -> tuple[bytes, float] | None:
        """A JPEG for /frame.jpg and its age in seconds: a frame offered within ``wait`` seconds
        of asking, or else the newest there is; None before the first."""
        with self._lock:
            self._still_wanted, after = True, self._seq
        self._next_frame(after, wait)
        with self._lock:
            self._still_wanted = False
            seq, offered_at = self._seq, self._offered_at
        if seq == 0:
            return None
        return self._jpeg_of(seq)[1], max(0.0, time.time() - offered_at)

    def _host_allowed(self, handler: BaseHTTPRequestHandler) -> bool:
        """On a loopback bind, the request must name the loopback (against DNS rebinding)."""
        if self.exposed:
            return True
        host = handler.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
        return name in LOOPBACK

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if not self.token:
            return True
        query = parse_qs(urlsplit(handler.path).query).get("token", [""])[0]
        header = handler.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else query
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        view = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "bienbao-live"
            timeout = view.timeout  # a client that says nothing, or stops reading, is cut

            def log_message(self, *args: Any) -> None:  # no access log on the board's console
                pass

            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if not view._host_allowed(self):
                    self._send(
                        HTTPStatus.FORBIDDEN,
                        b"this live view answers only to its loopback address (127.0.0.1, localhost, [::1])\n",
                        "text/plain; charset=utf-8",
                    )
                    return
                route = urlsplit(self.path).path
                if route == "/healthz" and not view.exposed:  # the service manager asks without a token
                    self._health()
                    return
                if not view._authorized(self):
                    self._send(
                        HTTPStatus.UNAUTHORIZED,
                        b"token required: open the URL that bienbao detect printed\n",
                        "text/plain; charset=utf-8",
                    )
                    return
                routes = {
                    "/": self._page,
                    "/index.html": self._page,
                    "/stats.json": self._stats,
                    "/frame.jpg": self._frame,
                    "/stream.mjpg": self._stream,
                    "/metrics": self._metrics,
                    "/healthz": self._health,
                }
                try:
                    if route.startswith("/snapshots/"):
                        self._snapshot(route.removeprefix("/snapshots/"))
                        return
                    routes.get(route, self._not_found)()
                except OSError:  # the client went away, or stopped reading past the timeout
                    view.client_errors += 1

            def _snapshot(self, name: str) -> None:
                path = view.snapshots.path(name) if view.snapshots is not None else None
                if path is None:  # never a path outside the snapshot folder
                    self._not_found()
                else:
                    self._send(HTTPStatus.OK, path.read_bytes(), "image/jpeg")

            def _not_found(self) -> None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

            def _page(self) -> None:
                token = json.dumps(view.token or "")
                page = PAGE.read_text(encoding="utf-8").replace("__TOKEN__", token).encode()
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")

            def _stats(self) -> None:
                self._send(HTTPStatus.OK, json.dumps(view.snapshot(), ensure_ascii=False).encode(), "application/json")

            def _frame(self) -> None:
                still = view._still()
                if still is None:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain")
                else:
                    self._send(HTTPStatus.OK, still[0], "image/jpeg", {"X-Frame-Age": f"{still[1]:.2f}"})

            def _metrics(self) -> None:
                if view.metrics is None:
                    self._send(HTTPStatus.NOT_FOUND, b"no metrics in this run\n", "text/plain")
                else:
                    self._send(HTTPStatus.OK, *view.metrics.exposition())

            def _health(self) -> None:
                if view.metrics is None:
                    self._send(HTTPStatus.NOT_FOUND, b"no health check in this run\n", "text/plain")
                    return
                healthy, reason = view.metrics.health()
                status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, f"{'ok' if healthy else 'unhealthy'}: {reason}\n".encode(), "text/plain")

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with view._lock:
                    view.stream_clients += 1
                try:
                    seq = 0
                    while True:
                        nxt = view._next_frame(seq)
                        if view._closing:
                            return
                        if nxt is None:
                            continue
                        seq, data = view._jpeg_of(nxt)
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(data)).encode()
                            + b"\r\n\r\n"
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        with view._lock:
                            view.frames_streamed += 1
                finally:
                    with view._lock:
                        view.stream_clients -= 1

        return Handler

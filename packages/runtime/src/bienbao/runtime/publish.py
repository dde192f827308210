"""A fleet feed that loses nothing: events (and optionally detections) to an MQTT broker.

    publisher = MqttPublisher("mqtt://broker:1883/bienbao", board="car-17", model="3f2a...",
                              queue="/var/lib/bienbao/mqtt-queue.sqlite")
    publisher.publish("event", {...})      # never blocks on the network
    publisher.close()                      # sends what it can within a timeout; the rest stays queued

Every message is first written to an on-disk queue (SQLite, one transaction per message), then sent
by a background thread with QoS 1 and removed only once the broker acknowledged it. While the
broker or the network is down, messages wait on disk, bounded by ``max_queued`` (the oldest are
dropped first and counted); they go out in order when it returns, and a restarted ``detect`` sends
what an earlier run left queued. Each message carries the board id, the model's hash and a
sequence number that continues across restarts, so a consumer sees gaps and drops duplicates.

Delivery is at least once (an acknowledgement lost in a crash means the message is sent again);
with the consumer dropping a ``(board, seq)`` it has already seen, as ``bienbao monitor`` does,
each message counts exactly once. Topics: ``<topic>/<board>/<kind>`` (kind: event, detections).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ._deps import require

__all__ = ["DiskQueue", "MqttPublisher", "MqttUrl", "parse_mqtt_url"]


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttUrl:
    """``mqtt://[user:password@]host[:port]/topic`` (port 1883 by default)."""
    parts = urlsplit(url)
    topic = parts.path.lstrip("/")
    if parts.scheme != "mqtt" or not parts.hostname or not topic:
        raise ValueError(f"{url!r}: expected mqtt://HOST[:PORT]/TOPIC, e.g. mqtt://127.0.0.1:1883/bienbao")
    if any(c in topic for c in "#+") or "#" in url or parts.query:
        raise ValueError(f"{url!r}: the topic to publish to cannot hold the wildcards # or +")
    try:
        port = parts.port or 1883
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from exc
    return MqttUrl(
        parts.hostname,
        port,
        topic.rstrip("/"),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


class DiskQueue:
    """Ordered, bounded, crash-safe message queue in one SQLite file (standard library only).

    ``put`` assigns the next sequence number and stores the message in one transaction; when the
    queue holds more than ``max_messages``, the oldest are deleted and counted in ``dropped``.
    Both counters live in the file, so they continue across restarts."""

    def __init__(self, path: str | Path, max_messages: int = 10000) -> None:
        if max_messages < 1:
            raise ValueError(f"queue: max_messages must be >= 1, got {max_messages}")
        self.path, self.max_messages = Path(path), max_messages
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "topic TEXT NOT NULL, payload BLOB NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise OSError(f"message queue {self.path}: cannot open it ({exc})") from exc
        self._lock = threading.Lock()

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _set(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def put(self, topic: str, message: dict[str, Any]) -> int:
        """Store ``message`` with the next sequence number (written into it as ``seq``); the number."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._counter("seq") + 1
                self._set("seq", seq)
                payload = json.dumps({**message, "seq": seq}, ensure_ascii=False).encode()
                self._db.execute("INSERT INTO messages (topic, payload) VALUES (?, ?)", (topic, payload))
                excess = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] - self.max_messages
                if excess > 0:
                    self._db.execute(
                        "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)", (excess,)
                    )
                    self._set("dropped", self._counter("dropped") + excess)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK") if self._db.in_transaction else None
                raise OSError(f"message queue {self.path}: cannot store a message ({exc})") from exc
            return seq

    def peek(self, limit: int = 32, after: int = 0) -> list[tuple[int, str, bytes]]:
        """The oldest ``limit`` messages with an id above ``after``: (id, topic, payload)."""
        with self._lock:
            return self._db.execute(
                "SELECT id, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()

    def remove(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._counter("dropped")

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._counter("seq")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MqttPublisher:
    def __init__(
        self,
        url: str,
        *,
        board: str | None = None,
        model: str = "",
        queue: str | Path,
        max_queued: int = 10000,
        window: int = 32,
        keepalive: int = 30,
    ) -> None:
        mqtt = require("paho.mqtt.client", "mqtt")
        self.url = parse_mqtt_url(url)
        self.board = board or socket.gethostname()
        if any(c in self.board for c in "/#+"):
            raise ValueError(f"board id {self.board!r}: it becomes part of an MQTT topic, so no / # or +")
        self.model, self.window = model, window
        self.queue = DiskQueue(queue, max_queued)
        self.sent = 0
        self.outages = 0
        self.down_since: float | None = time.time()  # not connected yet
        self._connected = threading.Event()
        self._wake = threading.Condition()
        self._closing = False
        self._abort = False
        self._inflight: dict[int, Any] = {}  # queue id -> paho MQTTMessageInfo, in send order
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bienbao-{self.board}")
        if self.url.username:
            self.client.username_pw_set(self.url.username, self.url.password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(window)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(self.url.host, self.url.port, keepalive=keepalive)
        self.client.loop_start()  # paho's thread: connects, reconnects with back-off, resends in flight
        self._sender = threading.Thread(target=self._send_loop, name="bienbao-mqtt", daemon=True)
        self._sender.start()

    # -- paho's callbacks ----------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            return
        self.down_since = None
        self._connected.set()
        with self._wake:
            self._wake.notify_all()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self._connected.is_set():
            self.outages += 1
            self.down_since = time.time()
        self._connected.clear()

    # -- the loop's side -----------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return f"{self.url.topic}/{self.board}/{kind}"

    def publish(self, kind: str, data: dict[str, Any]) -> int:
        """Queue one message on disk (never waits for the network); its sequence number."""
        seq = self.queue.put(
            self.topic(kind),
            {"board": self.board, "model": self.model, "kind": kind, "time": round(time.time(), 3), "data": data},
        )
        with self._wake:
            self._wake.notify_all()
        return seq

    def _send_loop(self) -> None:
        while not self._abort:
            with self._wake:
                if self._closing and not self._inflight and (not self._connected.is_set() or not len(self.queue)):
                    return
            if not self._connected.is_set():
                self._connected.wait(0.5)
                continue
            # acknowledged messages leave the disk queue; paho resends unacknowledged ones itself
            # after a reconnect, so a message in flight is never published twice by this loop
            for message_id, info in list(self._inflight.items()):
                if info.is_published():
                    self.queue.remove(message_id)
                    del self._inflight[message_id]
                    self.sent += 1
            room = self.window - len(self._inflight)
            # the in-flight messages are the oldest queued: the next ones follow the newest of them
            rows = self.queue.peek(room, after=max(self._inflight, default=0)) if room > 0 else []
            for message_id, topic, payload in rows:
                self._inflight[message_id] = self.client.publish(topic, payload, qos=1)
            if not rows:
                with self._wake:
                    self._wake.wait(0.05 if self._inflight else 0.5)

    def status(self) -> dict[str, Any]:
        return {
            "connected": self._connected.is_set(),
            "queued": len(self.queue),
            "sent": self.sent,
            "dropped": self.queue.dropped,
            "outages": self.outages,
            "last_seq": self.queue.last_seq,
            "down_since": None if self.down_since is None else round(self.down_since, 3),
        }

    def close(self, timeout: float = 5.0) -> dict[str, Any]:
        """Send what the broker takes within ``timeout``; what is left stays queued for the next
        run. The final status."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._sender.join(timeout)
        self._abort = True  # out of time: what is still in flight stays queued on disk
        self._sender.join(1.0)
        self._inflight.clear()
        status = self.status()
        self.client.loop_stop()
        self.client.disconnect()
        self.queue.close()
        return status

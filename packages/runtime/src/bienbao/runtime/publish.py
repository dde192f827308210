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

The feed never dies quietly: a queue file that cannot be written for a while (locked by another
process, a full disk) keeps new messages in memory, in order, and the sender retries with back-off;
a broker that refuses the login is reported once with its reason. Each such fault goes to
``on_status`` (``bienbao detect`` prints it) and into ``status()`` (``errors``, ``last_error``,
``refused``, ``unstored``), which the live view's ``/stats.json`` and ``detect``'s summary show;
``failure()`` says whether the run's feed failed (``detect`` exits non-zero then).

Delivery is at least once (an acknowledgement lost in a crash means the message is sent again);
with the consumer dropping a ``(board, seq)`` it has already seen, as ``bienbao monitor`` does,
each message counts exactly once. Topics: ``<topic>/<board>/<kind>`` (kind: event, detections), and
``<topic>/<board>/available``: a retained ``online`` on connect and ``offline`` on a clean stop or,
as the broker's last will, when the board vanishes (power cut, network gone past the keepalive).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import ssl
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from ._deps import require
from .redact import redact

__all__ = [
    "PASSWORD_VARIABLE",
    "SCHEMA",
    "DiskQueue",
    "MqttPublisher",
    "MqttSecurity",
    "MqttUrl",
    "connect_failure",
    "mqtt_client",
    "parse_mqtt_url",
]

#: every message's ``schema`` field: docs/schemas/fleet-message-v1.json describes version 1
SCHEMA = "bienbao.fleet/1"

#: the environment variable a broker password may come from (instead of the URL, which shows in ``ps``)
PASSWORD_VARIABLE = "BIENBAO_MQTT_PASSWORD"


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:  # printable: never the password
        auth = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}/{self.topic}"


@dataclass(frozen=True)
class MqttSecurity:
    """Where the password and the TLS files come from. ``password_file``: a file whose first line
    is the password; else ``$BIENBAO_MQTT_PASSWORD``; else the URL's. ``ca_file``: the CA that
    signed the broker's certificate (default: the system's CAs); ``cert_file`` + ``key_file``: a
    client certificate, for brokers that ask for one (``require_certificate true``)."""

    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("MQTT client certificate: give both the certificate and its key file")
        for name in ("password_file", "ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise FileNotFoundError(f"MQTT {name.replace('_', ' ')} {value}: no such file")

    def password(self, url: MqttUrl) -> str | None:
        import os

        if self.password_file is not None:
            lines = Path(self.password_file).read_text().splitlines()
            return lines[0] if lines else ""
        return os.environ.get(PASSWORD_VARIABLE) or url.password


def mqtt_client(mqtt: Any, url: MqttUrl, security: MqttSecurity, client_id: str, **options: Any) -> Any:
    """A paho client with the URL's user, the password from ``security`` and, for ``mqtts://``, TLS
    (the broker's certificate checked against ``security.ca_file`` or the system's CAs)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **options)
    password = security.password(url)
    if url.username or password:
        client.username_pw_set(url.username or "", password)
    if url.tls:
        try:
            client.tls_set(ca_certs=security.ca_file, certfile=security.cert_file, keyfile=security.key_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad CA file or key
            raise ValueError(f"{url}: TLS set-up failed ({exc})") from exc
    elif security.ca_file or security.cert_file:
        raise ValueError(f"{url}: TLS files given for a plain connection: write mqtts:// to use TLS")
    return client


def connect_failure() -> tuple[str, bool]:
    """Why the connection attempt failed, and whether TLS refused it (a certificate or CA problem,
    which retrying does not fix), inside paho's ``on_connect_fail`` (paho calls it from its
    ``except OSError`` block, so the exception is the one being handled)."""
    exc = sys.exc_info()[1]
    if exc is None:
        return "no reason given", False
    return str(exc) or type(exc).__name__, isinstance(exc, ssl.SSLError)


def parse_mqtt_url(url: str) -> MqttUrl:
    """``mqtt://[user[:password]@]host[:port]/topic`` (port 1883), or ``mqtts://`` for TLS (port
    8883). A password is better given by file or environment (``MqttSecurity``)."""
    parts, shown = urlsplit(url), redact(url)
    topic = parts.path.lstrip("/")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not topic:
        raise ValueError(
            f"{shown!r}: expected mqtt://HOST[:PORT]/TOPIC (or mqtts:// for TLS), e.g. mqtt://127.0.0.1:1883/bienbao"
        )
    if any(c in topic for c in "#+") or "#" in url or parts.query:
        raise ValueError(f"{shown!r}: the topic to publish to cannot hold the wildcards # or +")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"{shown!r}: {exc}") from exc
    return MqttUrl(
        parts.hostname,
        port,
        topic.rstrip("/"),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        tls,
    )


def _disk_hint(path: Path) -> str:
    """``"; its disk is full"`` when the folder's file system has (almost) no room left."""
    import shutil

    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f"; its disk is full ({free} bytes free)" if free < 64 * 1024 else ""


class DiskQueue:
    """Ordered, bounded, crash-safe message queue in one SQLite file (standard library only).

    ``put`` assigns the next sequence number and stores the message in one transaction; when the
    queue holds more than ``max_messages``, the oldest are deleted and counted in ``dropped``.
    Both counters live in the file, so they continue across restarts. A locked file is waited on
    for ``busy_timeout`` seconds at most (the detection loop calls ``put``); then ``OSError``."""

    _TABLES: ClassVar[dict[str, list[str]]] = {"messages": ["id", "topic", "payload"], "counters": ["name", "value"]}

    def __init__(self, path: str | Path, max_messages: int = 10000, busy_timeout: float = 0.2) -> None:
        if max_messages < 1:
            raise ValueError(f"queue: max_messages must be >= 1, got {max_messages}")
        self.path, self.max_messages = Path(path), max_messages
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_timeout)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "topic TEXT NOT NULL, payload BLOB NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            self._check_schema()
        except (OSError, sqlite3.Error) as exc:
            raise OSError(f"message queue {self.path}: cannot open it ({exc}{_disk_hint(self.path)})") from exc
        self._lock = threading.Lock()

    def _check_schema(self) -> None:
        """Refuse a file that holds other tables' columns under our names (another program's file,
        or a queue from a version with another layout): sending from it would fail on every row."""
        for table, columns in self._TABLES.items():
            found = [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
            if found != columns:
                self._db.close()
                raise sqlite3.DatabaseError(
                    f"its table {table!r} has the columns {found}, not bienbao's {columns}: it is not a bienbao "
                    "message queue (give another --queue file, or move this one away)"
                )

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
                raise OSError(
                    f"message queue {self.path}: cannot store a message ({exc}{_disk_hint(self.path)})"
                ) from exc
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
        on_status: Callable[[str], None] | None = None,
        security: MqttSecurity | None = None,
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
        self.errors = 0  # queue-file or sender faults (each retried)
        self.last_error: str | None = None  # the current fault; None once the feed works again
        self.refused: str | None = None  # the broker's reason while it refuses the login
        self.unreachable: str | None = None  # why the last connection attempt failed (network, TLS)
        self.tls_refused = False  # ... and whether TLS refused it
        self._on_status = on_status or (lambda message: None)
        self._unstored: deque[tuple[str, dict[str, Any]]] = deque()  # not yet on disk, in order
        self._unstored_lock = threading.Lock()
        self.lost = 0  # messages that never reached the disk (more than max_queued waiting, or at close)
        self._connected = threading.Event()
        self._wake = threading.Condition()
        self._closing = False
        self._abort = False
        self._inflight: dict[int, Any] = {}  # queue id -> paho MQTTMessageInfo, in send order
        try:
            self.client = mqtt_client(mqtt, self.url, security or MqttSecurity(), f"bienbao-{self.board}")
        except BaseException:
            self.queue.close()
            raise
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(window)
        # availability (Frigate's convention): a retained "online" on every connect, and "offline"
        # set by the broker itself when this board vanishes (its last will) or sent on a clean stop
        self.client.will_set(self.topic("available"), "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(self.url.host, self.url.port, keepalive=keepalive)
        self.client.loop_start()  # paho's thread: connects, reconnects with back-off, resends in flight
        self._sender = threading.Thread(target=self._send_loop, name="bienbao-mqtt", daemon=True)
        self._sender.start()

    # -- paho's callbacks ----------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            if self.refused != str(reason_code):
                self._on_status(
                    f"the broker {self.url.host}:{self.url.port} refused the connection: {reason_code} "
                    "(messages stay queued; check the user name and password)"
                )
            self.refused = str(reason_code)
            return
        if self.refused is not None or self.unreachable is not None:
            self._on_status(f"the broker {self.url.host}:{self.url.port} accepted the connection now")
        self.refused = self.unreachable = None
        self.tls_refused = False
        self.down_since = None
        client.publish(self.topic("available"), "online", qos=1, retain=True)
        self._connected.set()
        with self._wake:
            self._wake.notify_all()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        reason, self.tls_refused = connect_failure()
        if self.unreachable != reason:
            self._on_status(
                f"cannot connect to the broker {self.url.host}:{self.url.port}: {reason} "
                "(messages stay queued; retrying)"
            )
        self.unreachable = reason

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self._connected.is_set():
            self.outages += 1
            self.down_since = time.time()
        self._connected.clear()

    # -- the loop's side -----------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return f"{self.url.topic}/{self.board}/{kind}"

    def publish(self, kind: str, data: dict[str, Any]) -> int | None:
        """Queue one message on disk (never waits for the network); its sequence number, or None
        when the queue file cannot take it now: then it waits in memory, in order, and the sender
        stores it once the file can be written again."""
        message = {
            "schema": SCHEMA,
            "board": self.board,
            "model": self.model,
            "kind": kind,
            "time": round(time.time(), 3),
            "data": data,
        }
        seq = None
        with self._unstored_lock:
            if not self._unstored:  # messages already waiting in memory go first
                try:
                    seq = self.queue.put(self.topic(kind), message)
                except OSError as exc:
                    self._fault(exc)
            if seq is None:
                self._unstored.append((self.topic(kind), message))
                if len(self._unstored) > self.queue.max_messages:  # the queue's own bound, in memory too
                    self._unstored.popleft()
                    self.lost += 1
        with self._wake:
            self._wake.notify_all()
        return seq

    def _fault(self, exc: BaseException) -> None:
        self.errors += 1
        if self.last_error is None:
            self._on_status(f"message feed: {exc}; retrying (messages wait in memory meanwhile)")
        self.last_error = str(exc)

    def _store_unstored(self) -> None:
        """Move messages that waited in memory to the disk queue, oldest first."""
        with self._unstored_lock:
            while self._unstored:
                topic, message = self._unstored[0]
                self.queue.put(topic, message)  # OSError: they keep waiting
                self._unstored.popleft()

    def _send_loop(self) -> None:
        backoff = 0.1
        while not self._abort:
            try:
                step = self._send_step()
                if step == "done":
                    return
                if step == "failing":
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if step == "worked" and self.last_error is not None:
                    self._on_status("message feed: the queue file works again")
                    self.last_error = None
                backoff = 0.1
            except (OSError, sqlite3.Error) as exc:
                self._fault(exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # a bug: say so with its traceback, but keep the feed alive
                self._fault(exc)
                traceback.print_exc()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _send_step(self) -> str:
        """One round of the sender: "done" when closing and nothing more can be sent, "waiting" for
        the broker without touching the queue file, "worked" after reading and writing it, "failing"
        when messages waiting in memory still cannot be stored (what is on disk is sent meanwhile)."""
        worked = "worked" if self._unstored else "waiting"
        if self._unstored:
            try:
                self._store_unstored()
            except OSError as exc:
                self._fault(exc)
                worked = "failing"
        with self._wake:
            if self._closing and not self._inflight and (not self._connected.is_set() or not len(self.queue)):
                return "done"
        if not self._connected.is_set():
            self._connected.wait(0.5)
            return worked
        # acknowledged messages leave the disk queue (one whose removal failed stays in flight, is
        # not sent again, and its removal is retried); paho resends unacknowledged ones itself
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
        return "failing" if worked == "failing" else "worked"

    def status(self) -> dict[str, Any]:
        queued: int | None
        dropped: int | None
        last_seq: int | None
        try:
            queued, dropped, last_seq = len(self.queue), self.queue.dropped, self.queue.last_seq
        except sqlite3.Error:  # the file cannot be read right now: the other figures still hold
            queued = dropped = last_seq = None
        return {
            "connected": self._connected.is_set(),
            "queued": queued,
            "sent": self.sent,
            "dropped": dropped,
            "outages": self.outages,
            "last_seq": last_seq,
            "down_since": None if self.down_since is None else round(self.down_since, 3),
            "refused": self.refused,
            "unreachable": self.unreachable,
            "errors": self.errors,
            "last_error": self.last_error,
            "unstored": len(self._unstored),
            "lost": self.lost,
        }

    def failure(self) -> str | None:
        """Why this run's feed failed, or None: the broker refused the login (or TLS the broker)
        until the end, messages were lost (never stored), or the queue file still fails. A broker
        that is only out of reach is not a failure: the messages wait on disk for it."""
        reasons = []
        if self.refused is not None:
            reasons.append(f"the broker refused the connection ({self.refused})")
        if self.tls_refused:
            reasons.append(f"TLS refused the broker's certificate ({self.unreachable})")
        if self.lost:
            reasons.append(f"{self.lost} messages could not be stored and are lost")
        if self.last_error is not None:
            reasons.append(f"the queue file fails ({self.last_error})")
        return "; ".join(reasons) or None

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
        try:
            self._store_unstored()
        except OSError as exc:
            self.last_error = str(exc)
        self.lost += len(self._unstored)  # the file never took them: say so, they are gone
        self._unstored.clear()
        status = self.status()
        if self._connected.is_set():  # a clean stop: say so (the last will is only for vanishing)
            info = self.client.publish(self.topic("available"), "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(1.0)
        self.client.loop_stop()
        self.client.disconnect()
        self.queue.close()
        return status

"""The consumer side of the fleet feed: ``bienbao monitor mqtt://HOST[:PORT]/TOPIC``.

``FleetMonitor`` takes the messages that ``MqttPublisher`` sends (any number of boards), drops a
``(board, seq)`` it has already seen (delivery is at least once), and keeps per board: confirmed
signs, the last one, sequence gaps (messages that never arrived: dropped from a full queue, or
sent before this consumer started) and duplicates dropped. ``table()`` renders it as text.

A message that is not a well-formed bienbao message (not JSON, a missing or mistyped field, an
event whose time is not a number) is rejected and counted by reason, never raised: one bad
message on the topic must not stop the consumer, and with a persistent session the broker would
deliver it again on every restart.
"""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .names import display_name

__all__ = ["BoardState", "FleetMonitor", "FleetSubscriber", "InvalidMessageError", "parse_message"]


class InvalidMessageError(ValueError):
    """A payload that is not a bienbao fleet message: ``part`` names what is wrong (a field such
    as ``data.first_time``, or ``JSON``), the text says how."""

    def __init__(self, part: str, text: str) -> None:
        super().__init__(f"{part}: {text}")
        self.part = part


def _field(mapping: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    value = mapping.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        shown = "missing" if name not in mapping else f"{type(value).__name__} {str(value)[:40]!r}"
        raise InvalidMessageError(f"{where}{name}", f"{shown}, expected {kinds}")
    return value


def parse_message(payload: bytes | str) -> dict[str, Any]:
    """The message, checked: ``board`` (text), ``seq`` (integer), ``kind`` (text), ``data`` (an
    object, may be absent); a confirmed event's ``name`` (text) and ``first_time`` (a finite number
    where present)."""
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessageError("JSON", f"not JSON ({exc})") from exc
    if not isinstance(message, dict):
        raise InvalidMessageError("JSON", f"a JSON {type(message).__name__}, not an object")
    if not _field(message, "board", str):
        raise InvalidMessageError("board", "empty")
    _field(message, "seq", int)
    _field(message, "kind", str)
    data = message.setdefault("data", {})
    if data is None:
        data = message["data"] = {}
    if not isinstance(data, dict):
        raise InvalidMessageError("data", f"a {type(data).__name__}, not an object")
    if message["kind"] == "event" and data.get("event") == "confirmed":
        _field(data, "name", str, "data.")
        first_time = _field(data, "first_time", (int, float), "data.") if "first_time" in data else 0.0
        if not math.isfinite(first_time):
            raise InvalidMessageError("data.first_time", f"{first_time} is not a finite number")
    return message


@dataclass
class BoardState:
    board: str
    model: str = ""
    seqs: set[int] = field(default_factory=set)
    confirmed: int = 0
    detections: int = 0  # detection messages (frames with detections)
    duplicates: int = 0
    last_sign: str = ""
    last_time: float = 0.0
    signs: dict[str, int] = field(default_factory=dict)  # class name -> confirmed count
    available: str = ""  # the board's retained availability: online, offline, or "" (not heard)

    @property
    def gaps(self) -> int:
        """Sequence numbers missing between the first and the last received."""
        return (max(self.seqs) - min(self.seqs) + 1 - len(self.seqs)) if self.seqs else 0


class FleetMonitor:
    def __init__(self) -> None:
        self.boards: dict[str, BoardState] = {}
        self.rejected: Counter[str] = Counter()  # reason -> messages rejected for it
        self.last_rejection = ""

    @property
    def invalid(self) -> int:
        """Messages rejected as not bienbao messages."""
        return sum(self.rejected.values())

    def receive(self, payload: bytes | str) -> dict[str, Any] | None:
        """One message; the message if it is new, ``None`` for a duplicate or a rejected one
        (counted in ``rejected``, the reason in ``last_rejection``)."""
        try:
            message = parse_message(payload)
        except InvalidMessageError as exc:
            self.last_rejection = str(exc)
            self.rejected[exc.part] += 1
            return None
        board, seq, kind = message["board"], message["seq"], message["kind"]
        state = self.boards.setdefault(board, BoardState(board))
        if seq in state.seqs:
            state.duplicates += 1
            return None
        state.seqs.add(seq)
        state.model = str(message.get("model", ""))
        data = message["data"]
        if kind == "event" and data.get("event") == "confirmed":
            state.confirmed += 1
            state.last_sign, state.last_time = str(data.get("name", "")), float(data.get("first_time", 0.0))
            state.signs[state.last_sign] = state.signs.get(state.last_sign, 0) + 1
        elif kind == "event" and data.get("event") == "update" and "previous_name" in data:  # its class changed
            previous, name = str(data.get("previous_name", "")), str(data.get("name", ""))
            if state.signs.get(previous):
                state.signs[previous] -= 1
            state.signs[name] = state.signs.get(name, 0) + 1
            if state.last_sign == previous:
                state.last_sign = name
        elif kind == "detections":
            state.detections += 1
        return message

    def availability(self, board: str, payload: bytes | str) -> str | None:
        """A ``TOPIC/BOARD/available`` message (``online`` or ``offline``): the state, or None for
        anything else (rejected and counted like a malformed message)."""
        state = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
        if state not in ("online", "offline") or not board:
            self.rejected["available"] += 1
            self.last_rejection = f"available: {state[:40]!r}, expected online or offline"
            return None
        self.boards.setdefault(board, BoardState(board)).available = state
        return state

    def table(self, vietnamese: bool = False) -> str:
        header = (
            f"{'board':<16} {'state':<7} {'model':<16} {'signs':>6} {'last sign':<34} {'at':>8} {'msgs':>6} "
            f"{'gaps':>5} {'dup':>4}"
        )
        rows = [header, "-" * len(header)]
        for state in sorted(self.boards.values(), key=lambda s: s.board):
            name = display_name(state.last_sign) if vietnamese else state.last_sign
            at = time.strftime("%H:%M:%S", time.localtime(state.last_time)) if state.last_time else "-"
            rows.append(
                f"{state.board:<16.16} {state.available or '-':<7} {state.model:<16.16} {state.confirmed:>6} "
                f"{name or '-':<34.34} {at:>8} {len(state.seqs):>6} {state.gaps:>5} {state.duplicates:>4}"
            )
        if self.invalid:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in self.rejected.most_common())
            rows.append(f"({self.invalid} messages that were not bienbao messages rejected; {reasons})")
        return "\n".join(rows)


class FleetSubscriber:
    """A ``FleetMonitor`` fed from the broker: subscribes to ``TOPIC/+/+`` with QoS 1 and a
    persistent session (``client_id`` fixed: the broker keeps this consumer's messages while it is
    away). ``on_status(text)`` hears of connection changes and rejected messages, ``on_message``
    of each new message. ``stopped`` is set when retrying cannot help (the broker refused the
    login, TLS refused the broker); ``failure()`` then says why, as it does when the broker was
    never reached."""

    def __init__(
        self,
        url: Any,  # a bienbao.runtime.publish.MqttUrl
        security: Any,  # ... and its MqttSecurity
        client_id: str = "bienbao-monitor",
        on_status: Callable[[str], None] | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from ._deps import require
        from .publish import mqtt_client

        mqtt = require("paho.mqtt.client", "mqtt")
        self.url, self.monitor, self.lock = url, FleetMonitor(), threading.Lock()
        self._say = on_status or (lambda text: None)
        self._on_new = on_message or (lambda message: None)
        self.stopped = threading.Event()
        self.connected = self.ever_connected = self.tls_refused = False
        self.refused: str | None = None
        self.unreachable: str | None = None
        self.client = mqtt_client(mqtt, url, security, client_id, clean_session=False)
        self.client.on_connect, self.client.on_connect_fail = self._on_connect, self._on_connect_fail
        self.client.on_disconnect, self.client.on_message = self._on_disconnect, self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    @property
    def where(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    def start(self) -> FleetSubscriber:
        self.client.connect_async(self.url.host, self.url.port, keepalive=30)
        self.client.loop_start()
        return self

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def failure(self) -> str | None:
        if self.refused is not None:
            return f"the broker {self.where} refused the connection: {self.refused}"
        if self.tls_refused:
            return f"TLS refused the broker {self.where}: {self.unreachable}"
        if not self.ever_connected:
            return f"never reached the broker {self.where}: {self.unreachable or 'no answer'}"
        return None

    # -- paho's network thread: nothing may escape these, or the consumer goes deaf silently ----
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:  # a wrong password does not fix itself
            self.refused = str(reason_code)
            self.stopped.set()
            return
        self.connected = self.ever_connected = True
        self.unreachable = None
        client.subscribe(f"{self.url.topic}/+/+", qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        # said once the broker acknowledged it: from here on it keeps this consumer's messages
        if any(code.is_failure for code in reason_codes):
            self._say(f"the broker {self.where} refused the subscription to {self.url.topic}/+/+: {reason_codes}")
            return
        self._say(f"subscribed to {self.url.topic}/+/+ on {self.where}")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        from .publish import connect_failure

        reason, self.tls_refused = connect_failure()
        if self.unreachable != reason:
            self._say(f"cannot connect to the broker {self.where}: {reason} (retrying)")
        self.unreachable = reason
        if self.tls_refused:  # nor does a certificate problem
            self.stopped.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self.connected and not self.stopped.is_set():
            self._say(f"lost the broker {self.where} ({reason_code}): reconnecting")
        self.connected = False

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        from .redact import redact

        try:
            parts = message.topic.rsplit("/", 2)
            board, kind = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[-1])
            state = new = None
            with self.lock:
                rejected_before = self.monitor.invalid
                if kind == "available":
                    state = self.monitor.availability(board, message.payload)
                else:
                    new = self.monitor.receive(message.payload)
                rejected = self.monitor.invalid > rejected_before
            if rejected:
                self._say(f"rejected a message on {redact(message.topic)}: {self.monitor.last_rejection}")
            elif state is not None:
                self._say(f"board {board} is {state}")
            elif new is not None:
                self._on_new(new)
        except Exception:  # a bug: its traceback, and the consumer goes on
            traceback.print_exc()

"""The consumer side of the fleet feed: ``bienbao monitor mqtt://HOST[:PORT]/TOPIC``.

``FleetMonitor`` takes the messages that ``MqttPublisher`` sends (any number of boards), drops a
``(board, seq)`` it has already seen (delivery is at least once), and keeps per board: confirmed
signs, the last one, sequence gaps (messages that never arrived: dropped from a full queue, or
sent before this consumer started) and duplicates dropped. ``table()`` renders it as text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .names import display_name

__all__ = ["BoardState", "FleetMonitor"]


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

    @property
    def gaps(self) -> int:
        """Sequence numbers missing between the first and the last received."""
        return (max(self.seqs) - min(self.seqs) + 1 - len(self.seqs)) if self.seqs else 0


class FleetMonitor:
    def __init__(self) -> None:
        self.boards: dict[str, BoardState] = {}
        self.invalid = 0  # messages that were not bienbao messages

    def receive(self, payload: bytes | str) -> dict[str, Any] | None:
        """One message; the message if it is new, ``None`` for a duplicate or an invalid one."""
        try:
            message = json.loads(payload)
            board, seq, kind = str(message["board"]), int(message["seq"]), message["kind"]
        except (ValueError, KeyError, TypeError):
            self.invalid += 1
            return None
        state = self.boards.setdefault(board, BoardState(board))
        if seq in state.seqs:
            state.duplicates += 1
            return None
        state.seqs.add(seq)
        state.model = str(message.get("model", ""))
        data = message.get("data") or {}
        if kind == "event" and data.get("event") == "confirmed":
            state.confirmed += 1
            state.last_sign, state.last_time = str(data.get("name", "")), float(data.get("first_time", 0.0))
            state.signs[state.last_sign] = state.signs.get(state.last_sign, 0) + 1
        elif kind == "detections":
            state.detections += 1
        return message

    def table(self, vietnamese: bool = False) -> str:
        header = (
            f"{'board':<16} {'model':<16} {'signs':>6} {'last sign':<34} {'at':>8} {'msgs':>6} {'gaps':>5} {'dup':>4}"
        )
        rows = [header, "-" * len(header)]
        for state in sorted(self.boards.values(), key=lambda s: s.board):
            name = display_name(state.last_sign) if vietnamese else state.last_sign
            at = time.strftime("%H:%M:%S", time.localtime(state.last_time)) if state.last_time else "-"
            rows.append(
                f"{state.board:<16.16} {state.model:<16.16} {state.confirmed:>6} {name or '-':<34.34} {at:>8} "
                f"{len(state.seqs):>6} {state.gaps:>5} {state.duplicates:>4}"
            )
        if self.invalid:
            rows.append(f"({self.invalid} messages that were not bienbao messages ignored)")
        return "\n".join(rows)

"""Where a sign was seen: NMEA 0183 from a GPS receiver (``bienbao detect --gps /dev/ttyACM0``).

A USB or UART GPS receiver (u-blox and most others) appears as a serial device that writes NMEA
sentences, one per line. ``NmeaReader`` reads them in a thread and keeps the latest fix from the
``RMC`` (position, speed, validity) and ``GGA`` (fix quality, satellites, altitude) sentences of
any talker (``$GP``, ``$GN``, ``$GL``...), checking each sentence's checksum. ``fix()`` gives it
while it is fresh (``max_age`` seconds) and valid, else ``None``: events then carry no ``gps``
field, never a stale or invalid position. The device must already run at its baud rate (set with
``stty -F DEVICE 9600`` if it needs one; most USB receivers do not).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["NmeaReader", "parse_nmea"]


def _checksum_ok(sentence: str) -> bool:
    body, star, given = sentence.partition("*")
    if not star:
        return False
    value = 0
    for char in body[1:]:  # between "$" and "*"
        value ^= ord(char)
    try:
        return value == int(given[:2], 16)
    except ValueError:
        return False


def _degrees(value: str, hemisphere: str, width: int) -> float | None:
    """NMEA's ``dddmm.mmmm`` + N/S/E/W -> signed decimal degrees."""
    if not value or hemisphere not in "NSEW" or not hemisphere:
        return None
    degrees = int(value[:width]) + float(value[width:]) / 60.0
    return -degrees if hemisphere in "SW" else degrees


def _rmc(fields: list[str]) -> dict[str, Any] | None:
    if len(fields) < 8 or fields[2] != "A":  # V: the receiver says the position is not valid
        return None
    lat, lon = _degrees(fields[3], fields[4], 2), _degrees(fields[5], fields[6], 3)
    speed = float(fields[7]) * 1.852 if fields[7] else None  # knots -> km/h
    return {"lat": lat, "lon": lon, "speed_kmh": speed} if lat is not None and lon is not None else None


def _gga(fields: list[str]) -> dict[str, Any] | None:
    if len(fields) < 10 or fields[6] in ("", "0"):  # fix quality 0: none
        return None
    lat, lon = _degrees(fields[2], fields[3], 2), _degrees(fields[4], fields[5], 3)
    altitude = float(fields[9]) if fields[9] else None
    if lat is None or lon is None:
        return None
    return {"lat": lat, "lon": lon, "satellites": int(fields[7] or 0), "altitude_m": altitude}


SENTENCES = {"RMC": _rmc, "GGA": _gga}


def parse_nmea(line: str) -> dict[str, Any] | None:
    """The fields of one RMC or GGA sentence (``None`` for other sentences, bad checksums, no fix)."""
    sentence = line.strip()
    if not sentence.startswith("$") or not _checksum_ok(sentence):
        return None
    fields = sentence.split("*")[0].split(",")
    parse = SENTENCES.get(fields[0][3:])
    try:
        return parse(fields) if parse is not None else None
    except ValueError:
        return None


class NmeaReader:
    def __init__(self, device: str | Path, max_age: float = 5.0) -> None:
        self.device, self.max_age = Path(device), max_age
        if not self.device.exists():
            raise FileNotFoundError(
                f"--gps {self.device}: no such device (a receiver shows up as /dev/ttyACM0 or /dev/ttyUSB0)"
            )
        self._fix: dict[str, Any] = {}
        self._when = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sentences = 0  # RMC and GGA sentences used
        self.rejected = 0  # sentences whose checksum did not match
        self._thread = threading.Thread(target=self._run, name="bienbao-gps", daemon=True)

    def start(self) -> NmeaReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def feed(self, line: str) -> None:
        """One line from the receiver."""
        parsed = parse_nmea(line)
        if parsed is None:
            sentence = line.strip()
            if sentence.startswith("$") and not _checksum_ok(sentence):
                self.rejected += 1  # corrupted on the wire (other sentence kinds are simply not used)
            return
        self.sentences += 1
        with self._lock:
            self._fix = {**self._fix, **{k: v for k, v in parsed.items() if v is not None}}
            self._when = time.monotonic()

    def fix(self) -> dict[str, Any] | None:
        """The latest valid fix (lat, lon and what the receiver gave: speed_kmh, altitude_m,
        satellites) while it is at most ``max_age`` seconds old; None otherwise."""
        with self._lock:
            if not self._fix or time.monotonic() - self._when > self.max_age:
                return None
            return {key: round(value, 7) if isinstance(value, float) else value for key, value in self._fix.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.device.open("r", encoding="ascii", errors="replace") as stream:
                    for line in stream:
                        self.feed(line)
                        if self._stop.is_set():
                            return
            except OSError:
                pass  # unplugged: try again
            self._stop.wait(1.0)

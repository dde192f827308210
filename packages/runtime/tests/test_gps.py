"""GPS fixes from NMEA 0183 (issue 34 item 2's optional fields): real receiver sentences, parsed
with their checksums; a reader on a real pseudo-terminal (what a USB receiver is to the kernel);
events carry the fix while it is valid and fresh, no field otherwise."""

from __future__ import annotations

import os
import time

import pytest

from bienbao.runtime.gps import NmeaReader, parse_nmea

# the NMEA standard's own examples (Munich), with their checksums
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


def sentence(body: str) -> str:
    value = 0
    for char in body:
        value ^= ord(char)
    return f"${body}*{value:02X}"


def test_rmc_and_gga_give_position_speed_altitude() -> None:
    rmc = parse_nmea(RMC)
    assert rmc["lat"] == pytest.approx(48 + 7.038 / 60) and rmc["lon"] == pytest.approx(11 + 31.0 / 60)
    assert rmc["speed_kmh"] == pytest.approx(22.4 * 1.852)
    gga = parse_nmea(GGA)
    assert gga["satellites"] == 8 and gga["altitude_m"] == 545.4
    hanoi = parse_nmea(sentence("GNRMC,083000,A,2101.500,N,10551.000,E,10.0,90.0,061226,,,A"))  # GN talker
    assert hanoi["lat"] == pytest.approx(21.025) and hanoi["lon"] == pytest.approx(105.85)
    south_west = parse_nmea(sentence("GPRMC,0,A,3351.000,S,15112.000,W,0,0,010101,,"))
    assert south_west["lat"] < 0 and south_west["lon"] < 0


def test_invalid_fixes_bad_checksums_and_other_sentences_give_nothing() -> None:
    assert parse_nmea(RMC.replace("*6A", "*6B")) is None  # corrupted on the wire
    assert parse_nmea(sentence("GPRMC,123519,V,4807.038,N,01131.000,E,0,0,230394,,")) is None  # V: not valid
    assert parse_nmea(sentence("GPGGA,123519,,,,,0,00,,,M,,M,,")) is None  # quality 0: no fix
    assert parse_nmea(sentence("GPGSV,3,1,11,03,03,111,00")) is None and parse_nmea("garbage") is None


def test_a_reader_on_a_pseudo_terminal_keeps_the_latest_fresh_fix() -> None:
    master, slave = os.openpty()
    reader = NmeaReader(os.ttyname(slave), max_age=0.5).start()
    try:
        assert reader.fix() is None
        os.write(master, (RMC + "\r\n" + GGA + "\r\n").encode())
        deadline = time.monotonic() + 5
        while reader.fix() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        fix = reader.fix()
        assert fix is not None and fix["satellites"] == 8 and fix["speed_kmh"] == pytest.approx(41.4848)
        time.sleep(0.7)  # the receiver went quiet: the fix is stale, and no longer given
        assert reader.fix() is None
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)
    with pytest.raises(FileNotFoundError, match="no such device"):
        NmeaReader("/dev/ttyACM-nope")


def test_events_carry_the_fix_only_while_there_is_one(tmp_path, brightness_model) -> None:
    import json

    from bienbao.runtime.live import LiveOutputs, _OpenOutputs

    master, slave = os.openpty()
    reader = NmeaReader(os.ttyname(slave), max_age=60).start()
    events = tmp_path / "events.jsonl"
    opened = _OpenOutputs(LiveOutputs(events=events, gps=reader), 30.0, None)
    try:
        opened.emit([{"event": "confirmed", "track": 1, "name": "a"}])  # no fix yet: no field
        os.write(master, (RMC + "\r\n").encode())
        deadline = time.monotonic() + 5
        while reader.fix() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        opened.emit([{"event": "ended", "track": 1, "name": "a"}])
        opened.close()
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)
    first, second = (json.loads(line) for line in events.read_text().splitlines())
    assert "gps" not in first and second["gps"]["lat"] == pytest.approx(48.1173)


def test_the_reader_counts_corrupted_sentences_not_unused_kinds(tmp_path) -> None:
    device = tmp_path / "recorded.nmea"  # a file works as a device: a recorded drive replayed
    device.write_text("")
    reader = NmeaReader(device)
    for line in (RMC, RMC.replace("*6A", "*00"), sentence("GPVTG,084.4,T,,M,022.4,N,041.5,K"), GGA):
        reader.feed(line)
    assert reader.sentences == 2 and reader.rejected == 1 and reader.fix()["satellites"] == 8

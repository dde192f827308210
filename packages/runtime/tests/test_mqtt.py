"""The fleet feed against a real Mosquitto broker on 127.0.0.1: broker down at start, broker killed
mid-run and restarted, detect killed and restarted. Every message arrives exactly once (after the
consumer drops a (board, seq) it has seen) or is counted as dropped."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bienbao.runtime.fleet import FleetMonitor
from bienbao.runtime.publish import DiskQueue, MqttPublisher, parse_mqtt_url

paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (bienbao-runtime[mqtt]) is not installed")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
needs_broker = pytest.mark.skipif(
    MOSQUITTO is None, reason="no Mosquitto broker here (apt-get install mosquitto; .ci/run installs it)"
)
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real Mosquitto on 127.0.0.1 that keeps sessions on disk (so a consumer's subscription and
    its queued QoS 1 messages outlive a broker restart)."""

    def __init__(self, listener: str = "", passwords: dict[str, str] | None = None) -> None:
        """``listener``: lines for the listener (TLS files); ``passwords``: users and their passwords
        (none: anonymous clients allowed)."""
        # mosquitto started as root runs as the user "mosquitto": its folder must be open to it
        # (pytest's tmp_path is not), or it silently keeps nothing across a restart
        folder = Path(tempfile.mkdtemp(prefix="bienbao-mosquitto-"))
        folder.chmod(0o777)
        self.port, self.folder, self.process = free_port(), folder, None
        self.config = folder / "mosquitto.conf"
        settings = "allow_anonymous true\n"
        if passwords:
            (folder / "passwd").write_text("")
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(folder / "passwd"), user, password], check=True)
            (folder / "passwd").chmod(0o644)
            settings = f"allow_anonymous false\npassword_file {folder}/passwd\n"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n{listener}{settings}persistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
        )

    def start(self) -> Broker:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(10)
            self.process = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}/fleet"


class Consumer:
    """A subscriber with a persistent session (QoS 1), as ``bienbao monitor`` subscribes."""

    def __init__(self, broker: Broker) -> None:
        self.monitor, self.raw = FleetMonitor(), []
        self.available: list[tuple[str, str]] = []  # (board, online | offline) in arrival order
        self.subscribed = threading.Event()  # the broker acknowledged the subscription
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"consumer-{broker.port}", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe("fleet/+/+", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith("/available"):  # the boards' retained online/offline
            self.available.append((message.topic.split("/")[1], message.payload.decode()))
            return
        self.raw.append(json.loads(message.payload))
        self.monitor.receive(message.payload)

    def seqs(self, board: str) -> list[int]:
        state = self.monitor.boards.get(board)
        return sorted(state.seqs) if state else []

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker():
    broker = Broker()
    yield broker
    broker.stop(signal.SIGKILL)
    shutil.rmtree(broker.folder, ignore_errors=True)


def test_the_disk_queue_is_bounded_drops_the_oldest_and_keeps_counting_across_restarts(tmp_path) -> None:
    queue = DiskQueue(tmp_path / "q.sqlite", max_messages=5)
    assert [queue.put("t", {"i": i}) for i in range(8)] == list(range(1, 9))
    assert len(queue) == 5 and queue.dropped == 3
    assert [json.loads(p)["i"] for _, _, p in queue.peek(10)] == [3, 4, 5, 6, 7]  # oldest dropped first
    queue.close()
    again = DiskQueue(tmp_path / "q.sqlite", max_messages=5)  # a restarted detect
    assert again.put("t", {"i": 8}) == 9 and again.dropped == 4 and len(again) == 5


def test_urls_and_board_ids_are_checked(tmp_path) -> None:
    assert parse_mqtt_url("mqtt://user:pw@broker:1884/a/b").topic == "a/b"
    assert parse_mqtt_url("mqtt://broker/x").port == 1883
    for bad in ("http://broker/x", "mqtt://broker", "mqtt://broker/a/#"):
        with pytest.raises(ValueError, match="mqtt://"):
            parse_mqtt_url(bad)
    with pytest.raises(ValueError, match="board id"):
        MqttPublisher("mqtt://127.0.0.1:1/x", board="a/b", queue=tmp_path / "q.sqlite")


@needs_broker
def test_broker_down_at_start_every_message_arrives_once_in_order_when_it_comes_up(tmp_path, broker, wait_for) -> None:
    broker.start()
    consumer = Consumer(broker)  # the consumer's session exists before the outage (a fleet's server)
    assert wait_for(consumer.client.is_connected)
    time.sleep(1.2)  # the session is saved (autosave_interval 1)
    broker.stop()
    publisher = MqttPublisher(broker.url, board="car-1", model="abc", queue=tmp_path / "queue.sqlite")
    seqs = [publisher.publish("event", {"event": "confirmed", "name": "toc-do-toi-da-60", "i": i}) for i in range(40)]
    time.sleep(0.5)
    assert publisher.status()["queued"] == 40 and not publisher.status()["connected"]
    broker.start()
    assert wait_for(lambda: len(consumer.seqs("car-1")) == 40), (consumer.seqs("car-1"), str(publisher.status()))
    status = publisher.close()
    assert status["queued"] == 0 and status["sent"] == 40 and status["dropped"] == 0
    in_order = [m["seq"] for m in consumer.raw if m["board"] == "car-1"]
    assert consumer.seqs("car-1") == seqs and in_order == sorted(in_order)
    message = consumer.raw[0]
    assert message["model"] == "abc" and message["kind"] == "event" and message["data"]["i"] == 0
    assert consumer.monitor.boards["car-1"].confirmed == 40 and consumer.monitor.boards["car-1"].gaps == 0
    print(
        f"broker down at start: 40 queued, {len(consumer.seqs('car-1'))} received once, "
        f"{consumer.monitor.boards['car-1'].duplicates} duplicates dropped, {status['dropped']} dropped"
    )
    consumer.close()


@needs_broker
def test_broker_killed_mid_run_and_restarted_nothing_is_lost(tmp_path, broker, wait_for) -> None:
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.client.is_connected)
    publisher = MqttPublisher(broker.url, board="car-2", queue=tmp_path / "queue.sqlite")
    assert wait_for(lambda: publisher.status()["connected"])
    time.sleep(1.2)
    for i in range(150):
        publisher.publish("event", {"i": i})
        if i == 60:
            wait_for(lambda: publisher.status()["queued"] == 0)
            time.sleep(1.2)  # what the broker took is on its disk
            broker.stop(signal.SIGKILL)  # a power cut on the broker's side
        if i == 110:
            assert publisher.status()["queued"] >= 40  # held on the board's disk while the broker is gone
            broker.start()
        time.sleep(0.005)
    assert wait_for(lambda: len(consumer.seqs("car-2")) == 150, 30), (len(consumer.seqs("car-2")), publisher.status())
    status = publisher.close()
    assert status["queued"] == 0 and status["outages"] == 1 and status["dropped"] == 0
    assert consumer.seqs("car-2") == list(range(1, 151))
    print(
        f"broker killed mid-run: 150 published, {len(consumer.seqs('car-2'))} received once, "
        f"{consumer.monitor.boards['car-2'].duplicates} duplicates dropped, outages {status['outages']}"
    )
    consumer.close()


@needs_broker
def test_a_full_queue_drops_the_oldest_and_the_consumer_sees_the_gap(tmp_path, broker, wait_for) -> None:
    publisher = MqttPublisher(broker.url, board="car-3", queue=tmp_path / "queue.sqlite", max_queued=10)
    for i in range(25):  # the broker is down: only the newest 10 are kept
        publisher.publish("event", {"i": i})
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.client.is_connected)
    time.sleep(0.3)
    # the consumer subscribed after the publisher may have sent: wait for the queue to drain, then check
    assert wait_for(lambda: publisher.status()["queued"] == 0)
    status = publisher.close()
    assert status["dropped"] == 15 and status["sent"] == 10
    consumer.close()


def detect(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bienbao.cli", "detect", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@needs_broker
def test_detect_killed_and_restarted_sends_what_it_had_queued_and_the_monitor_counts_it_once(
    tmp_path, broker, wait_for
) -> None:
    model = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"
    clip = ROOT / "datasets/vn-signs-sample.mp4"
    queue, events = tmp_path / "state/queue.sqlite", tmp_path / "events.jsonl"
    broker.start()
    monitor = subprocess.Popen(
        [sys.executable, "-m", "bienbao.cli", "monitor", broker.url, "--lines", "--client-id", "fleet-server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(monitor.stdout.readline, "")), daemon=True).start()
    # said once the broker acknowledged the subscription; stopping it (SIGTERM) saves the session
    assert "subscribed" in monitor.stderr.readline()
    broker.stop()  # the network is down while the board drives
    common = [
        str(model),
        "--source",
        str(clip),
        "--every-frame",
        "--headless",
        "--board-id",
        "car-4",
        "--publish",
        broker.url,
        "--queue",
        str(queue),
        "--events",
        str(events),
        "--append",
    ]
    first = detect(common)
    assert wait_for(lambda: events.exists() and len(events.read_text().splitlines()) >= 6, 120)
    first.send_signal(signal.SIGKILL)  # a power cut on the board
    first.wait(10)
    written = [json.loads(line) for line in events.read_text().splitlines()]
    held = DiskQueue(queue)
    queued = len(held)
    held.close()
    assert queued >= len(written) - 1 > 0  # what the events file got is on the disk queue too (a kill between
    broker.start()  # the two writes can lose the one in hand)
    second = detect([*common, "--max-frames", "5"])
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])["summary"]
    total = summary["publish"]["last_seq"]
    assert summary["publish"]["queued"] == 0 and summary["publish"]["dropped"] == 0 and total >= queued
    # the monitor reconnects with its own back-off; the broker holds its messages meanwhile
    assert wait_for(lambda: len(lines) >= total, 40), lines
    time.sleep(0.5)
    monitor.send_signal(signal.SIGTERM)
    _, err = monitor.communicate(timeout=20)
    seqs = [json.loads(line)["seq"] for line in lines]
    assert sorted(seqs) == list(range(1, total + 1)), (seqs, err)  # each exactly once, the restart included
    assert "car-4" in err  # the final table
    print(
        f"detect killed and restarted: {len(written)} events written before the kill, {queued} queued on disk, "
        f"{total} messages in all, {len(seqs)} received by bienbao monitor, {len(set(seqs))} distinct"
    )


# -- faults: bad messages, a locked or full queue file, wrong passwords, TLS (issue 33) ----------

MALFORMED = b'{"board":"x","seq":1,"kind":"event","data":{"event":"confirmed","name":"x","first_time":"abc"}}'


def good(board: str, seq: int) -> bytes:
    data = {"event": "confirmed", "name": "cam-re-trai", "first_time": 1.5}
    return json.dumps({"board": board, "seq": seq, "kind": "event", "data": data}).encode()


def test_a_malformed_message_is_rejected_with_its_reason_and_later_ones_still_count() -> None:
    monitor = FleetMonitor()
    bad = [
        MALFORMED,
        b"not json",
        b"[1, 2]",
        b'{"board": "", "seq": 1, "kind": "event"}',
        b'{"board": "x", "seq": "1", "kind": "event"}',
        b'{"board": "x", "seq": true, "kind": "event"}',
        b'{"board": "x", "seq": 2, "kind": "event", "data": [1]}',
        b'{"board":"x","seq":3,"kind":"event","data":{"event":"confirmed","name":"x","first_time":NaN}}',
        b"\xff\xfe",
    ]
    assert [monitor.receive(payload) for payload in bad] == [None] * len(bad)
    assert monitor.invalid == len(bad)
    assert monitor.rejected == {"JSON": 3, "board": 1, "seq": 2, "data": 1, "data.first_time": 2}
    assert monitor.receive(good("car-1", 1)) is not None
    assert monitor.boards["car-1"].confirmed == 1 and "x" not in monitor.boards
    assert "9 messages that were not bienbao messages rejected" in monitor.table()


def monitor_cli(url: str, *args: str, duration: float = 3.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "monitor", url, "--lines", "--duration", str(duration), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_broker
def test_the_monitor_survives_a_malformed_message_and_counts_the_boards_after_it(broker) -> None:
    broker.start()
    sender = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="sender")
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    # retained: the monitor gets them whenever it subscribes (its session is new)
    sender.publish("fleet/x/event", MALFORMED, qos=1, retain=True).wait_for_publish(5)
    sender.publish("fleet/car-9/event", good("car-9", 1), qos=1, retain=True).wait_for_publish(5)
    sender.loop_stop()
    done = monitor_cli(broker.url, "--client-id", "m1")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["board"] for line in done.stdout.splitlines()] == ["car-9"]
    assert "rejected a message on fleet/x/event: data.first_time: str 'abc', expected int or float" in done.stderr
    assert "1 messages that were not bienbao messages rejected" in done.stderr


def test_the_monitor_on_a_dead_broker_says_so_and_fails() -> None:
    done = monitor_cli(f"mqtt://127.0.0.1:{free_port()}/fleet", duration=2)
    assert done.returncode != 0
    assert "cannot connect to the broker" in done.stderr and "never reached the broker" in done.stderr


def test_a_foreign_queue_file_is_refused_clearly(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE messages (a TEXT, b TEXT)")
    with pytest.raises(OSError, match="not a bienbao message queue"):
        DiskQueue(path)


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A second process that holds the queue file's write lock for ``seconds``."""
    code = (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\n"
        f"time.sleep({seconds})\ndb.execute('COMMIT')\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


@needs_broker
def test_a_queue_file_locked_by_another_process_loses_nothing_and_the_feed_recovers(tmp_path, broker, wait_for) -> None:
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.subscribed.is_set)
    said: list[str] = []
    queue = tmp_path / "queue.sqlite"
    publisher = MqttPublisher(broker.url, board="car-5", queue=queue, on_status=said.append)
    assert wait_for(lambda: publisher.status()["connected"])
    publisher.publish("event", {"i": 0})
    assert wait_for(lambda: publisher.status()["queued"] == 0)
    locker = hold_lock(queue, 3.0)
    stored = [publisher.publish("event", {"i": i}) for i in range(1, 21)]
    assert stored[0] is None and publisher.status()["unstored"] > 0  # held in memory, in order
    locker.wait(20)
    assert wait_for(lambda: len(consumer.seqs("car-5")) == 21, 30), (consumer.seqs("car-5"), publisher.status())
    status = publisher.close()
    assert [m["data"]["i"] for m in consumer.raw] == list(range(21))  # in order, none lost
    assert status["errors"] >= 1 and status["last_error"] is None and status["lost"] == 0
    assert publisher.failure() is None
    assert any("database is locked" in line for line in said) and any("works again" in line for line in said)
    consumer.close()


def fill(folder: Path) -> Path:
    """Fill ``folder``'s file system to the last byte; the file that did it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to flush at close
        for size in (4096, 512, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return filler


@needs_broker
def test_a_full_disk_keeps_messages_in_memory_and_drains_once_there_is_room(small_disk, broker, wait_for) -> None:
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.subscribed.is_set)
    broker.stop()  # the session is saved; the board drives out of reach
    disk = small_disk(2048)
    queue = disk / "queue.sqlite"
    said: list[str] = []
    publisher = MqttPublisher(broker.url, board="car-6", queue=queue, on_status=said.append)
    for i in range(3):
        publisher.publish("event", {"i": i})
    filler = fill(disk)  # then the disk fills up (a video recording, say)
    for i in range(3, 30):
        publisher.publish("event", {"i": i})
    assert publisher.status()["unstored"] == 27 and "disk is full" in publisher.status()["last_error"]
    broker.start()  # the broker is back: the three stored messages go out, their removal fails
    assert wait_for(lambda: len(consumer.seqs("car-6")) == 3, 30), (consumer.seqs("car-6"), publisher.status())
    time.sleep(0.5)
    assert publisher.status()["last_error"] is not None and publisher.status()["queued"] == 3
    filler.unlink()  # room again: everything is stored, sent once, and removed
    assert wait_for(lambda: len(consumer.seqs("car-6")) == 30, 30), (
        consumer.seqs("car-6"),
        str(publisher.status()),
        str(said),
    )
    assert wait_for(lambda: publisher.status()["queued"] == 0 and publisher.status()["unstored"] == 0)
    status = publisher.close()
    assert consumer.seqs("car-6") == list(range(1, 31)) and status["lost"] == 0 and status["last_error"] is None
    assert [m["data"]["i"] for m in consumer.raw] == list(range(30))  # in order, none twice
    assert any("disk is full" in line for line in said) and any("works again" in line for line in said), said
    again = DiskQueue(queue)  # a restart sends nothing twice: the queue drained
    assert len(again) == 0
    again.close()
    consumer.close()


@needs_broker
def test_a_wrong_password_is_said_at_once_and_the_run_fails(tmp_path, monkeypatch) -> None:
    broker = Broker(passwords={"car": "right"}).start()
    try:
        said: list[str] = []
        url = f"mqtt://car@127.0.0.1:{broker.port}/fleet"
        monkeypatch.setenv("BIENBAO_MQTT_PASSWORD", "wrong")
        publisher = MqttPublisher(url, board="car-7", queue=tmp_path / "q.sqlite", on_status=said.append)
        monkeypatch.delenv("BIENBAO_MQTT_PASSWORD")
        publisher.publish("event", {"i": 0})
        deadline = time.monotonic() + 10
        while publisher.refused is None and time.monotonic() < deadline:
            time.sleep(0.05)
        status = publisher.close(timeout=0.5)
        assert status["refused"] and status["queued"] == 1  # kept for a run with the right password
        assert "refused the connection" in publisher.failure()
        assert len([line for line in said if "refused" in line]) == 1 and "wrong" not in " ".join(said)
        # the monitor with the wrong password stops at once and fails; with the right one (from a file) it runs
        secret = tmp_path / "secret"
        secret.write_text("wrong\n")
        done = monitor_cli(url, "--mqtt-password-file", str(secret), duration=10)
        assert done.returncode != 0 and "refused the connection" in done.stderr
        secret.write_text("right\n")
        done = monitor_cli(url, "--mqtt-password-file", str(secret), duration=1)
        assert done.returncode == 0, done.stderr
    finally:
        broker.stop(signal.SIGKILL)
        shutil.rmtree(broker.folder, ignore_errors=True)


@needs_broker
def test_detect_never_prints_the_password_and_exits_non_zero_when_the_broker_refuses_it(tmp_path) -> None:
    broker = Broker(passwords={"car": "right"}).start()
    try:
        run = detect(
            [
                str(ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"),
                "--source",
                str(ROOT / "datasets/vn-signs-sample.mp4"),
                "--headless",
                "--every-frame",
                "--max-frames",
                "30",
                "--publish",
                f"mqtt://car:Pw-s3cr3t@127.0.0.1:{broker.port}/fleet",
                "--queue",
                str(tmp_path / "q.sqlite"),
                "--serve",
                "127.0.0.1:0",
                "--serve-token",
                "Tok-s3cr3t",
            ]
        )
        stdout, stderr = run.communicate(timeout=120)
    finally:
        broker.stop(signal.SIGKILL)
        shutil.rmtree(broker.folder, ignore_errors=True)
    assert run.returncode != 0 and "the fleet feed failed: the broker refused the connection" in stderr
    assert "refused the connection: Not authorized" in stderr or "Bad user name or password" in stderr, stderr
    assert "s3cr3t" not in stdout + stderr and "mqtt://car@127.0.0.1" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])["summary"]
    assert summary["publish"]["refused"] and summary["publish"]["failure"]


def test_stream_urls_are_printed_without_their_password() -> None:
    from bienbao.runtime.redact import redact
    from bienbao.runtime.sources import parse_source

    source = parse_source("rtsp://admin:cam-s3cret@10.0.0.7:554/stream1")
    assert source.label == "rtsp://admin:***@10.0.0.7:554/stream1" and "cam-s3cret" in str(source.target)
    assert redact("http://viewer/?token=abc&x=1") == "http://viewer/?token=***&x=1"
    assert redact("mqtt://u:p@ss@host/t") == "mqtt://u:***@host/t"  # an unencoded @ in the password
    assert "s3cret" not in str(parse_mqtt_url("mqtt://car:s3cret@h/t")) and "s3cret" not in redact(
        "'mqtt://car:s3cret@h' is bad"
    )
    with pytest.raises(ValueError) as error:
        parse_mqtt_url("mqtt://car:s3cret@h")  # no topic: the message names the URL, masked
    assert "s3cret" not in str(error.value) and "car:***@h" in str(error.value)


@pytest.fixture
def tls_broker(tmp_path):
    """A Mosquitto that speaks only TLS and wants a client certificate, with a test CA made by
    openssl: the CA, the broker's certificate (for IP 127.0.0.1) and a client's, in ``files``."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl here to make a test CA (apt-get install openssl)")
    folder = Path(tempfile.mkdtemp(prefix="bienbao-tls-"))
    folder.chmod(0o755)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=bienbao test CA")  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}")  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    for path in folder.iterdir():
        path.chmod(0o644)  # mosquitto runs as its own user
    broker = Broker(
        listener=f"cafile {folder}/ca.crt\ncertfile {folder}/server.crt\nkeyfile {folder}/server.key\n"
        "require_certificate true\n"
    ).start()
    broker.files = folder
    yield broker
    broker.stop(signal.SIGKILL)
    shutil.rmtree(broker.folder, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


@needs_broker
def test_mqtts_with_a_ca_and_a_client_certificate_delivers_and_a_wrong_ca_is_refused(tls_broker, tmp_path) -> None:
    from bienbao.runtime.publish import MqttSecurity

    files = tls_broker.files
    url = f"mqtts://127.0.0.1:{tls_broker.port}/fleet"
    flags = ["--mqtt-ca", str(files / "ca.crt"), "--mqtt-cert", str(files / "client.crt")]
    flags += ["--mqtt-key", str(files / "client.key")]
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "monitor",
            url,
            "--lines",
            "--duration",
            "20",
            "--client-id",
            "tls-m",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "subscribed" in monitor.stderr.readline()
    security = MqttSecurity(ca_file=str(files / "ca.crt"), cert_file=str(files / "client.crt"),
                            key_file=str(files / "client.key"))  # fmt: skip
    publisher = MqttPublisher(url, board="car-8", queue=tmp_path / "q.sqlite", security=security)
    for i in range(5):
        publisher.publish("event", {"event": "confirmed", "name": "cam-re-trai", "first_time": float(i)})
    deadline = time.monotonic() + 20
    while publisher.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.05)
    status = publisher.close()
    assert status["sent"] == 5 and publisher.failure() is None
    monitor.send_signal(signal.SIGTERM)
    stdout, stderr = monitor.communicate(timeout=30)
    assert [json.loads(line)["seq"] for line in stdout.splitlines()] == [1, 2, 3, 4, 5], stderr
    # the system's CAs do not know the test CA: TLS refuses the broker, and both sides say so
    said: list[str] = []
    stranger = MqttPublisher(url, board="car-9", queue=tmp_path / "q2.sqlite", on_status=said.append)
    deadline = time.monotonic() + 10
    while not stranger.tls_refused and time.monotonic() < deadline:
        time.sleep(0.05)
    stranger.close(timeout=0.2)
    assert "TLS refused the broker's certificate" in stranger.failure() and "CERTIFICATE_VERIFY_FAILED" in said[0]
    done = monitor_cli(url, duration=10)
    assert done.returncode != 0 and "TLS refused the broker" in done.stderr
    with pytest.raises(ValueError, match="write mqtts://"):
        MqttPublisher(url.replace("mqtts", "mqtt"), queue=tmp_path / "q3.sqlite", security=security)


@needs_broker
def test_a_board_that_vanishes_is_marked_offline_by_its_last_will_and_a_clean_stop_says_so(
    tmp_path, broker, wait_for
) -> None:
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.subscribed.is_set)
    code = (
        "import sys, time\n"
        "from bienbao.runtime.publish import MqttPublisher\n"
        "p = MqttPublisher(sys.argv[1], board='car-11', queue=sys.argv[2], keepalive=1)\n"
        "while not p.status()['connected']: time.sleep(0.05)\n"
        "print('up', flush=True)\ntime.sleep(60)\n"
    )
    board = subprocess.Popen(
        [sys.executable, "-c", code, broker.url, str(tmp_path / "q.sqlite")], stdout=subprocess.PIPE, text=True
    )
    assert board.stdout.readline().strip() == "up"
    assert wait_for(lambda: ("car-11", "online") in consumer.available)
    board.send_signal(signal.SIGKILL)  # a power cut: no goodbye; the broker sends the last will
    board.wait(10)
    assert wait_for(lambda: consumer.available[-1] == ("car-11", "offline"), 15), consumer.available
    publisher = MqttPublisher(broker.url, board="car-12", queue=tmp_path / "q2.sqlite")
    assert wait_for(lambda: ("car-12", "online") in consumer.available)
    publisher.close()  # a clean stop says offline itself
    assert wait_for(lambda: consumer.available[-1] == ("car-12", "offline"))
    # retained: a monitor that starts later still sees each board's state
    done = monitor_cli(broker.url, "--client-id", "late", duration=2)
    assert "board car-11 is offline" in done.stderr and "board car-12 is offline" in done.stderr
    assert done.returncode == 0 and "rejected" not in done.stderr
    consumer.close()


def test_an_update_event_moves_the_sign_to_its_new_class_in_the_monitor() -> None:
    monitor = FleetMonitor()
    monitor.receive(good("car-1", 1))  # confirmed as cam-re-trai
    update = {"event": "update", "name": "cam-re-phai", "previous_name": "cam-re-trai", "track": 1}
    monitor.receive(json.dumps({"board": "car-1", "seq": 2, "kind": "event", "data": update}))
    state = monitor.boards["car-1"]
    assert state.confirmed == 1 and state.signs == {"cam-re-trai": 0, "cam-re-phai": 1}
    assert state.last_sign == "cam-re-phai"
    clearer = {"event": "update", "reason": "score", "name": "cam-re-phai", "track": 1}  # not a new sign
    monitor.receive(json.dumps({"board": "car-1", "seq": 3, "kind": "event", "data": clearer}))
    assert state.signs == {"cam-re-trai": 0, "cam-re-phai": 1} and state.confirmed == 1


@needs_broker
def test_every_message_detect_publishes_follows_the_committed_schema(tmp_path, broker, wait_for) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from bienbao.runtime import Detections
    from bienbao.runtime.publish import SCHEMA
    from bienbao.runtime.tracking import SignTracker, TrackerConfig

    schema = json.loads((ROOT / "docs/schemas/fleet-message-v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    broker.start()
    consumer = Consumer(broker)
    assert wait_for(consumer.subscribed.is_set)
    run = detect(
        [
            str(ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"),
            "--source",
            str(ROOT / "datasets/vn-signs-sample.mp4"),
            "--every-frame",
            "--headless",
            "--max-frames",
            "60",
            "--publish",
            broker.url,
            "--publish-detections",
            "--queue",
            str(tmp_path / "q.sqlite"),
        ]
    )
    stdout, stderr = run.communicate(timeout=180)
    assert run.returncode == 0, stderr
    total = json.loads(stdout.strip().splitlines()[-1])["summary"]["publish"]["last_seq"]
    assert wait_for(lambda: len(consumer.raw) >= total, 30)
    kinds = {(m["kind"], m["data"].get("event")) for m in consumer.raw}
    assert ("detections", None) in kinds and ("event", "confirmed") in kinds and ("event", "ended") in kinds
    for message in consumer.raw:
        assert message["schema"] == SCHEMA
        validator.validate(message)
    # an update event (a class that changed after confirmation), as the tracker writes it
    tracker = SignTracker(TrackerConfig(confirm_hits=1, confirm_window=1), ("a", "b"))
    box = np.array([[10, 10, 22, 22]], np.float32)
    events = []
    for c in (0, 1, 1):
        events += tracker.update(Detections(box, np.array([0.9], np.float32), np.array([c]), ("a", "b")), 1.0, 0).events
    update = next(e for e in events if e["event"] == "update")
    message = {**consumer.raw[0], "kind": "event", "data": update}
    validator.validate(message)
    with pytest.raises(jsonschema.ValidationError):  # the schema does check: an update must name the previous class
        validator.validate({**message, "data": {k: v for k, v in update.items() if k != "previous_name"}})
    consumer.close()

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

    def __init__(self) -> None:
        # mosquitto started as root runs as the user "mosquitto": its folder must be open to it
        # (pytest's tmp_path is not), or it silently keeps nothing across a restart
        folder = Path(tempfile.mkdtemp(prefix="bienbao-mosquitto-"))
        folder.chmod(0o777)
        self.port, self.folder, self.process = free_port(), folder, None
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
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
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"consumer-{broker.port}", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe("fleet/+/+", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
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
    assert wait_for(lambda: len(consumer.seqs("car-1")) == 40), consumer.seqs("car-1")
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
    assert "subscribed" in monitor.stderr.readline()
    time.sleep(1.2)  # the broker saved the monitor's session
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

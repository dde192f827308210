"""The live loop over real video: outputs, dropping instead of lagging, reconnecting, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bienbao.runtime import Detector
from bienbao.runtime.capture import LatestFrameCapture
from bienbao.runtime.draw import Annotator
from bienbao.runtime.live import run_live
from bienbao.runtime.sources import csi_pipeline, parse_source


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_frame_of_a_file_gives_a_video_and_json_lines(
    tmp_path, brightness_model, sign_video, count_frames
) -> None:
    video = sign_video(frames=20)
    detector = Detector(brightness_model(tmp_path / "m.onnx"), conf=0.2)
    capture = LatestFrameCapture(parse_source(str(video)), realtime=False)
    stats = run_live(
        detector,
        capture,
        threading.Event(),
        video=tmp_path / "out.mp4",
        jsonl=tmp_path / "d.jsonl",
        annotator=Annotator(vietnamese=True),
    )
    assert stats.processed == 20 and stats.dropped == 0
    lines = read_jsonl(tmp_path / "d.jsonl")
    assert [line["frame"] for line in lines] == list(range(20))
    assert all(d["name"] == "cam-re-trai" and len(d["box"]) == 4 for line in lines for d in line["detections"])
    assert count_frames(tmp_path / "out.mp4") == 20
    summary = stats.summary()
    assert summary["frames_processed"] == 20 and summary["latency_p95_ms"] >= summary["latency_mean_ms"] * 0.5
    again = LatestFrameCapture(parse_source(str(video)), realtime=False)  # a restarted service appends
    run_live(detector, again, threading.Event(), jsonl=tmp_path / "d.jsonl", max_frames=5, append=True)
    assert [line["frame"] for line in read_jsonl(tmp_path / "d.jsonl")] == [*range(20), *range(5)]


def test_a_slow_model_drops_frames_instead_of_lagging(tmp_path, brightness_model, sign_video) -> None:
    video = sign_video(frames=45, fps=30)  # 1.5 s of "camera"
    detector = Detector(brightness_model(tmp_path / "m.onnx"))
    capture = LatestFrameCapture(parse_source(str(video)), realtime=True)
    stats = run_live(detector, capture, threading.Event(), on_frame=lambda *_: time.sleep(0.15))  # ~6 FPS
    assert stats.captured == 45
    assert stats.dropped > 20 and stats.processed + stats.dropped == stats.captured
    assert stats.processed < 20


def test_a_camera_that_drops_is_reopened_and_the_loop_goes_on(
    tmp_path, brightness_model, sign_video, dropping_camera
) -> None:
    video = sign_video(frames=60)
    opened = []

    def opener(source):
        opened.append(time.monotonic())
        return dropping_camera(video, fail_after=5 if len(opened) == 1 else None)

    source = parse_source(str(video))
    live_camera = type(source)("camera", source.target, live=True)
    capture = LatestFrameCapture(live_camera, opener=opener)
    detector = Detector(brightness_model(tmp_path / "m.onnx"))
    stats = run_live(detector, capture, threading.Event(), max_frames=12)
    assert stats.processed == 12 and stats.reconnects == 1 and len(opened) == 2
    assert capture.reconnect_attempts == 1 and capture.backoff_delays == []  # reopened at the first try


def test_sigterm_leaves_a_playable_video_and_whole_json_lines(
    tmp_path, brightness_model, sign_video, count_frames
) -> None:
    video = sign_video(frames=300, fps=30)  # 10 s played in real time
    model = brightness_model(tmp_path / "m.onnx")
    out, lines = tmp_path / "out.mp4", tmp_path / "d.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bienbao.cli",
            "detect",
            model,
            "--source",
            str(video),
            "--save-video",
            str(out),
            "--jsonl",
            str(lines),
            "--headless",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while (not lines.exists() or len(lines.read_text().splitlines()) < 10) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])["summary"]
    records = read_jsonl(lines)  # every line parses: none cut in half
    assert len(records) == summary["frames_processed"] >= 10
    assert summary["frames_processed"] < 300  # it stopped early
    assert count_frames(out) == summary["frames_processed"]  # playable, every processed frame in it


def test_sources_and_the_csi_pipeline() -> None:
    assert parse_source("0").kind == "camera" and parse_source("0").target == 0
    assert parse_source("/dev/video1").kind == "camera"
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    csi = parse_source("csi:1", width=1920, height=1080, fps=30)
    assert csi.kind == "csi" and "sensor-id=1" in csi.target and "width=1920, height=1080" in csi.target
    assert csi_pipeline().endswith("appsink drop=true max-buffers=1")
    with pytest.raises(FileNotFoundError, match="not a camera index"):
        parse_source("no_such_video.mp4")


def test_vietnamese_names_are_drawn_when_a_font_exists(real_frames) -> None:
    from bienbao.runtime import Detections

    detections = Detections(
        np.array([[100, 100, 140, 140]], np.float32), np.array([0.9], np.float32), np.array([0]), ("cam-re-trai",)
    )
    vietnamese, ascii_only = Annotator(vietnamese=True), Annotator(vietnamese=False)
    if not vietnamese.vietnamese:
        pytest.skip("no DejaVu Sans font or Pillow here: the ASCII fallback is what runs")
    assert vietnamese.label("cam-re-trai", 0.9) == "Cấm rẽ trái 0.90"
    assert ascii_only.label("cam-re-trai", 0.9) == "cam-re-trai 0.90"
    frame = real_frames[0]
    drawn = vietnamese.draw(frame, detections, "30 FPS")
    assert drawn.shape == frame.shape and not np.array_equal(drawn, frame)
    assert np.array_equal(frame, real_frames[0])  # the input frame is not modified


def test_events_are_one_confirmed_and_one_ended_line_per_tracked_sign(tmp_path, brightness_model, sign_video) -> None:
    from bienbao.runtime.live import LiveOutputs
    from bienbao.runtime.tracking import SignTracker, TrackerConfig

    video = sign_video(frames=12)
    detector = Detector(brightness_model(tmp_path / "m.onnx"), conf=0.2)  # two fixed boxes, every frame
    capture = LatestFrameCapture(parse_source(str(video)), realtime=False)
    tracker = SignTracker(TrackerConfig(confirm_hits=3, confirm_window=5), detector.names)
    outputs = LiveOutputs(events=tmp_path / "out/events.jsonl", jsonl=tmp_path / "d.jsonl")
    stats = run_live(detector, capture, threading.Event(), outputs=outputs, tracker=tracker)
    events = read_jsonl(tmp_path / "out/events.jsonl")
    assert [(e["event"], e["track"]) for e in events] == [
        ("confirmed", 1),
        ("confirmed", 2),
        ("ended", 1),
        ("ended", 2),
    ]
    assert all(e["name"] == "cam-re-trai" for e in events)  # class 0 outscores class 1 on every frame
    assert [e["frames"] for e in events] == [3, 3, 12, 12] and events[0]["first_frame"] == 0
    assert events[2]["last_frame"] == 11 and stats.summary()["events"] == 2
    tracks = {d["track"] for line in read_jsonl(tmp_path / "d.jsonl") for d in line["detections"]}
    assert tracks == {1, 2}  # the per-frame lines name each detection's track


def test_a_bad_confirm_setting_is_refused_by_the_command(tmp_path, brightness_model) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "detect", brightness_model(tmp_path / "m.onnx"), "--confirm", "4/3"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "1 <= K <= N" in result.stderr


def test_a_model_update_mid_run_loses_no_frame_and_a_corrupt_candidate_is_refused(tmp_path, brightness_model) -> None:
    """issue 34 item 5: start on a 2-class 320x320 model; a manifest naming a file whose bytes do
    not match is refused (the running model stays); a good manifest naming the shipped 33-class
    384x640 model is swapped in between two frames; every frame of the clip is processed once."""
    import hashlib
    import json
    import shutil

    from bienbao.runtime.live import LiveOutputs
    from bienbao.runtime.model_update import MANIFEST, ModelWatcher

    root = Path(__file__).resolve().parents[3]
    shipped = root / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime-384x640.onnx"
    start = brightness_model(tmp_path / "start.onnx")
    folder = tmp_path / "updates"
    folder.mkdir()
    said: list[str] = []
    watcher = ModelWatcher(folder, Detector, hashlib.sha256(Path(start).read_bytes()).hexdigest(), said.append)
    shutil.copy(shipped, folder / "new.onnx")
    good = hashlib.sha256(shipped.read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps({"model": "new.onnx", "sha256": "0" * 64}))
    watcher.check()  # a corrupt (or half-copied) candidate: refused, nothing offered
    assert watcher.refused == 1 and "SHA-256" in said[-1] and watcher.take() is None
    events = tmp_path / "events.jsonl"
    seen: list[int] = []  # per processed frame: the class count of the model that processed it

    def on_frame(stats, detections) -> None:
        seen.append(len(detections.names))
        if stats.processed == 40:  # mid-run, the good manifest lands (rewritten: a new mtime and size)
            (folder / MANIFEST).write_text(json.dumps({"model": "new.onnx", "sha256": good}, indent=1))
            watcher.check()

    capture = LatestFrameCapture(parse_source(str(root / "datasets/vn-signs-sample.mp4")), realtime=False)
    stats = run_live(
        Detector(start),
        capture,
        threading.Event(),
        on_frame=on_frame,
        outputs=LiveOutputs(events=events, model_watcher=watcher),
    )
    assert stats.processed == 160 == len(seen)  # every frame of the clip, once
    assert seen == [2] * 40 + [33] * 120  # switched between frames 40 and 41
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    switch = [line for line in lines if line["event"] == "model"]
    assert len(switch) == 1 and switch[0]["sha256"] == good and switch[0]["classes"] == 33
    assert switch[0]["input"] == "640x384" and watcher.swapped == 1 and watcher.refused == 1

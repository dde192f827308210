"""The browser live view: served by the real loop on the real model and clip, read by a real
headless Chromium (the page loads, the stream shows frames, the figures update), plus the HTTP
contract (token, routes) and the rule that frames are encoded only while a client watches."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bienbao.runtime import Detector
from bienbao.runtime.capture import LatestFrameCapture
from bienbao.runtime.live import LiveOutputs, run_live
from bienbao.runtime.serve import LiveView, parse_serve_address
from bienbao.runtime.sources import parse_source

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"
CLIP = ROOT / "datasets/vn-signs-sample.mp4"
CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)


class Running:
    """``run_live`` on the clip in a thread, played in real time (a camera), with a live view."""

    def __init__(self, token: str | None = None, max_fps: float = 10.0, model: Path = MODEL) -> None:
        self.view = LiveView("127.0.0.1", 0, token=token, max_fps=max_fps).start()
        self.view.info = {"model": model.name}
        self.stop = threading.Event()
        detector = Detector(model)
        capture = LatestFrameCapture(parse_source(str(CLIP)), realtime=True)
        self.thread = threading.Thread(
            target=lambda: setattr(
                self, "stats", run_live(detector, capture, self.stop, outputs=LiveOutputs(view=self.view))
            ),
            daemon=True,
        )
        self.thread.start()

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.view.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(20)
        self.view.close()


def test_serve_addresses_default_to_this_board_only() -> None:
    assert parse_serve_address("8080") == ("127.0.0.1", 8080)
    assert parse_serve_address(":8080") == ("127.0.0.1", 8080)
    assert parse_serve_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_serve_address("[::1]:9000") == ("::1", 9000)
    for bad in ("host:", "host:http", "99999"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_serve_address(bad)


def test_the_token_is_required_on_every_route_and_the_routes_answer(wait_for) -> None:
    run = Running(token="s3cret")
    try:
        assert wait_for(lambda: json.loads(run.get("/stats.json?token=s3cret")[1]).get("frames_processed", 0) > 2)
        for path in ("/", "/stats.json", "/frame.jpg", "/stream.mjpg"):
            assert run.get(path)[0] == 401 and run.get(path + "?token=wrong")[0] == 401
        status, page = run.get("/?token=s3cret")
        assert status == 200 and b"bienbao live" in page and b'"s3cret"' in page
        assert run.get("/stats.json", {"Authorization": "Bearer s3cret"})[0] == 200
        assert run.get("/nowhere?token=s3cret")[0] == 404
        stats = json.loads(run.get("/stats.json?token=s3cret")[1])
        assert stats["backend"] == "onnxruntime (CPUExecutionProvider)" and stats["model"] == MODEL.name
        assert set(stats["stages_ms"]) == {"preprocess", "inference", "postprocess", "total"}
        assert stats["stages_ms"]["inference"]["p95"] >= stats["stages_ms"]["inference"]["p50"] > 0
    finally:
        run.close()


def test_frames_are_encoded_only_while_a_client_watches_and_at_the_capped_rate(wait_for) -> None:
    run = Running(max_fps=4.0)
    try:
        assert wait_for(lambda: json.loads(run.get("/stats.json")[1]).get("frames_processed", 0) >= 8)
        assert run.view.frames_encoded == 0 and run.view.stream_clients == 0  # nobody watching: no JPEG work
        with urllib.request.urlopen(f"http://127.0.0.1:{run.view.port}/stream.mjpg", timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            start, parts = time.monotonic(), 0
            while parts < 6:
                line = stream.readline()
                if line.startswith(b"Content-Length:"):
                    length = int(line.split(b":")[1])
                    stream.readline()
                    jpeg = stream.read(length)
                    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"  # a whole JPEG
                    parts += 1
            elapsed = time.monotonic() - start
        assert parts / elapsed <= 4.0 * 1.5  # capped near max_fps (the model alone runs faster)
        assert wait_for(lambda: run.view.stream_clients == 0, 5)
        encoded = run.view.frames_encoded
        time.sleep(1.0)
        assert run.view.frames_encoded == encoded  # the client left: encoding stopped
    finally:
        run.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium; .ci/run installs it)")
def test_a_real_headless_browser_shows_the_stream_and_live_figures() -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the runtime's test extra) is missing")
    run = Running(token="tok")
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(run.view.url)
            assert page.title() == "bienbao live"
            page.wait_for_function("document.getElementById('stream').naturalWidth > 0", timeout=20000)
            assert page.evaluate("document.getElementById('stream').naturalWidth") == 640  # the clip's frames
            page.wait_for_function("Number(document.getElementById('frames').textContent) > 0", timeout=10000)
            first = int(page.text_content("#frames"))
            page.wait_for_function(f"Number(document.getElementById('frames').textContent) > {first}", timeout=10000)
            assert float(page.text_content("#fps")) > 0
            assert page.text_content("#backend") == "onnxruntime (CPUExecutionProvider)"
            assert " / " in page.text_content("#infer")
            page.wait_for_function("document.querySelectorAll('#events tr').length > 0", timeout=30000)
            assert run.view.frames_streamed > 0
            if os.environ.get("BIENBAO_SCREENSHOT"):
                page.screenshot(path=os.environ["BIENBAO_SCREENSHOT"])
            browser.close()
    finally:
        run.close()


def test_a_view_closed_before_it_started_does_not_hang() -> None:
    # detect closes the view when a later setup step fails (an MQTT URL it refuses), before start()
    done = threading.Event()
    threading.Thread(target=lambda: (LiveView("127.0.0.1", 0).close(), done.set()), daemon=True).start()
    assert done.wait(5)

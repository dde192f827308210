"""Faults a board user meets, made real (a killed process, a full file system, a read-only folder, a
camera that will not come back), each checked for: nothing lost, nothing silent, one clear line.
The numbers are issue 16's items; benchmarks/faults.py runs the whole catalogue."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from bienbao.runtime import Detector
from bienbao.runtime.backends import backend_label, split_options
from bienbao.runtime.capture import LatestFrameCapture
from bienbao.runtime.live import run_live
from bienbao.runtime.sinks import LineWriter
from bienbao.runtime.sources import Source, parse_source

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "models/pretrained/yolov8n-vn-signs-int8-onnxruntime.onnx"


def detect(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "detect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kill_after_lines(command: list[str], lines: Path, count: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bienbao.cli", "detect", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not lines.exists() or len(lines.read_bytes().splitlines()) < count):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # a power cut
    process.wait(10)


# -- 2: a video that survives a power cut, and a full disk that is reported --------------------
def test_2_an_mkv_video_plays_after_the_process_is_killed(tmp_path, brightness_model, sign_video, count_frames) -> None:
    video, out, lines = sign_video(frames=300, fps=30), tmp_path / "out.mkv", tmp_path / "d.jsonl"
    kill_after_lines(
        [brightness_model(tmp_path / "m.onnx"), "--source", video, "--headless", "--save-video", out, "--jsonl", lines],
        lines,
        40,
    )
    assert count_frames(out) >= 20  # playable up to its last written frames, no index needed


def test_2_an_mp4_is_written_in_segments_and_the_closed_ones_play_after_a_kill(
    tmp_path, brightness_model, sign_video, count_frames
) -> None:
    video, out, lines = sign_video(frames=300, fps=30), tmp_path / "out.mp4", tmp_path / "d.jsonl"
    kill_after_lines(
        [
            brightness_model(tmp_path / "m.onnx"),
            "--source",
            video,
            "--headless",
            "--save-video",
            out,
            "--video-segment",
            "0.5",
            "--jsonl",
            lines,
        ],
        lines,
        70,
    )
    segments = [out, *sorted(tmp_path.glob("out.*.mp4"))]
    assert segments[1].name == "out.0001.mp4" and len(segments) >= 3
    assert all(count_frames(s) == 15 for s in segments[:-1])  # 0.5 s at 30 FPS each; only the open one is lost


def test_2_a_full_disk_stops_the_video_with_an_error_and_a_non_zero_exit(
    small_disk, brightness_model, sign_video, tmp_path, count_frames
) -> None:
    disk = small_disk(1536)
    result = detect(
        brightness_model(tmp_path / "m.onnx"),
        "--source",
        sign_video(frames=200),
        "--every-frame",
        "--headless",
        "--save-video",
        disk / "out.mp4",
        "--video-segment",
        "1",
    )
    assert result.returncode == 2, result.stderr
    assert "disk full" in result.stderr and str(disk / "out") in result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    assert 0 < summary["frames_processed"] < 200
    assert all(count_frames(s) > 0 for s in disk.glob("out*.mp4"))  # what was written plays


# -- 5: JSON lines on a full disk -----------------------------------------------------------------
def test_5_json_lines_on_a_full_disk_end_with_a_whole_line_and_one_message(
    small_disk, brightness_model, sign_video, tmp_path
) -> None:
    disk = small_disk(24)
    result = detect(
        brightness_model(tmp_path / "m.onnx"),
        "--source",
        sign_video(frames=200),
        "--every-frame",
        "--headless",
        "--jsonl",
        disk / "d.jsonl",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot write {disk / 'd.jsonl'}: No space left on device" in result.stderr
    text = (disk / "d.jsonl").read_text()
    assert text.endswith("\n") and all(json.loads(line)["frame"] >= 0 for line in text.splitlines())


def test_5_a_failed_line_is_cut_back_to_the_last_whole_line(small_disk) -> None:
    disk = small_disk(8)
    writer = LineWriter(disk / "x.jsonl")
    with pytest.raises(OSError, match="it keeps its"):
        for i in range(10000):
            writer.write({"i": i, "pad": "x" * 300})
    writer.close()
    lines = (disk / "x.jsonl").read_text().splitlines()
    assert lines and [json.loads(line)["i"] for line in lines] == list(range(len(lines))) == list(range(writer.lines))


# -- 7: --every-frame is not capped by the capture's wait ---------------------------------------
def test_7_every_frame_wakes_the_reader_instead_of_waiting_out_its_timeout(
    tmp_path, brightness_model, sign_video
) -> None:
    detector = Detector(brightness_model(tmp_path / "m.onnx"))
    capture = LatestFrameCapture(parse_source(str(sign_video(frames=40))), realtime=False)
    stats = run_live(detector, capture, threading.Event())
    assert stats.processed == 40 and stats.dropped == 0
    assert capture.stalls == 0  # each frame taken woke the reader: no 0.1 s wait per frame


# -- 10: an outage counts once, says that it is reconnecting, and backs off ------------------------
def test_10_one_outage_of_four_attempts_is_one_reconnect_and_each_is_announced(
    tmp_path, brightness_model, sign_video, dropping_camera
) -> None:
    video, attempts, messages = sign_video(frames=60), [], []

    def opener(source):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            return dropping_camera(video, fail_after=5)
        if len(attempts) <= 4:
            raise OSError("cannot open video source (unplugged)")
        return dropping_camera(video, fail_after=None)

    camera = Source("camera", str(video), live=True)
    capture = LatestFrameCapture(camera, opener=opener, max_backoff=1.0, on_status=messages.append)
    stats = run_live(Detector(brightness_model(tmp_path / "m.onnx")), capture, threading.Event(), max_frames=12)
    assert stats.processed == 12 and stats.reconnects == 1 and capture.reconnect_attempts == 4
    assert capture.backoff_delays == [0.5, 1.0, 1.0]  # doubling, capped at max_backoff
    assert "lost at" in messages[0] and "reconnecting" in messages[0]
    assert sum("attempt" in m and "failed" in m for m in messages) == 3 and "back after" in messages[-1]


# -- 12: bad model files and output folders: one line, non-zero exit ----------------------------
def test_12_a_truncated_onnx_is_named_in_one_line(tmp_path) -> None:
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2])
    result = detect(truncated, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--headless")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{truncated}: not a model ONNX Runtime can load" in result.stderr


def test_12_an_onnx_with_a_2d_input_is_refused_with_its_shape(tmp_path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
    )
    path = tmp_path / "flat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = detect(path, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--headless")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has shape [1, 8]; a detector takes images of shape (1, 3, height, width)" in result.stderr


def test_12_a_read_only_output_folder_is_named(read_only_dir, brightness_model, sign_video, tmp_path) -> None:
    for option, name in (("--jsonl", "d.jsonl"), ("--events", "e.jsonl"), ("--save-video", "v.mkv")):
        result = detect(
            brightness_model(tmp_path / "m.onnx"),
            "--source",
            sign_video(frames=5),
            "--every-frame",
            "--headless",
            option,
            read_only_dir / name,
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert str(read_only_dir / name) in result.stderr


# -- 14 and 18: options per backend, ONNX Runtime's GPU providers ----------------------------------
def test_14_threads_is_not_passed_to_a_backend_that_does_not_take_it(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not built here")
    assert split_options("auto", engine, {"threads": 4}) == ({}, ["threads"])
    assert split_options("auto", SHIPPED, {"threads": 4}) == ({"threads": 4}, [])
    result = detect(engine, "--threads", "4", "--source", ROOT / "datasets/vn-signs-sample.mp4")
    assert "--threads does not apply to the auto backend" in result.stderr
    assert "unexpected keyword" not in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == 2 and "tensorrt" in result.stderr.lower()  # the real reason: no TensorRT here


def test_18_onnxruntime_gpu_providers_are_choosable_and_the_one_used_is_reported(tmp_path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        result = detect(SHIPPED, "--backend", "onnxruntime-cuda", "--source", ROOT / "datasets/vn-signs-sample.mp4")
        assert result.returncode == 2 and "has no CUDAExecutionProvider" in result.stderr
    detector = Detector(SHIPPED)
    assert backend_label(detector.backend) == "onnxruntime (CPUExecutionProvider)"
    result = detect(
        SHIPPED, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--every-frame", "--headless", "--max-frames", "2"
    )
    assert result.returncode == 0 and "(onnxruntime (CPUExecutionProvider), 640x640)" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["summary"]["backend"] == backend_label(detector.backend)


# -- 16 and 17: what a board user is told about TensorRT ---------------------------------------------
def test_16_missing_tensorrt_says_what_jetpack_provides_not_an_empty_extra(tmp_path) -> None:
    from bienbao.runtime import MissingDependencyError
    from bienbao.runtime.backends.tensorrt import TensorRTBackend

    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here: the missing-package message cannot be shown")
    except ImportError:
        pass
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    with pytest.raises(MissingDependencyError) as missing:
        TensorRTBackend(engine)
    message = str(missing.value)
    assert "bienbao-runtime[tensorrt]" in message and "installs nothing" in message  # said, not suggested
    assert "apt install python3-libnvinfer" in message and "--system-site-packages" in message
    assert "print(tensorrt.__version__)" in message  # how to check


@pytest.mark.parametrize(
    "version, strongly_typed, expected",
    [
        ("8.5.2.2", False, (8, 5)),  # JetPack 5.1
        ("8.6.2.3", False, (8, 6)),  # JetPack 6.0
        ("10.3.0.30", True, (10, 3)),  # JetPack 6.1+
        ("8.4.1.5", False, "TensorRT 8.5 or newer (JetPack 5.1"),
        ("8.6.2.3", True, "strongly typed networks need TensorRT 9"),
        ("garbage", False, "cannot read the TensorRT version"),
    ],
)
def test_17_tensorrt_8_5_and_8_6_are_supported_and_older_ones_say_which_jetpack(
    version, strongly_typed, expected
) -> None:
    from bienbao.runtime.backends.tensorrt import check_tensorrt_version

    if isinstance(expected, tuple):
        assert check_tensorrt_version(version, strongly_typed) == expected
    else:
        with pytest.raises(RuntimeError, match=re.escape(expected)):
            check_tensorrt_version(version, strongly_typed)


# -- 15: the Jetson install script builds pycuda with CUDA on PATH --------------------------------------
def test_15_the_install_scripts_cuda_environment_finds_nvcc_or_says_how(tmp_path) -> None:
    cuda = tmp_path / "cuda"
    (cuda / "bin").mkdir(parents=True)
    nvcc = cuda / "bin/nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.6'\n")
    nvcc.chmod(0o755)
    common = ROOT / "deploy/install-common.sh"
    script = f'source "{common}"; PATH=/usr/bin:/bin; cuda_build_env; echo "$CUDA_ROOT"; command -v nvcc; nvcc'
    found = subprocess.run(
        ["bash", "-c", script],
        env={"CUDA_HOME": str(cuda), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == [str(cuda), str(nvcc), "Cuda compilation tools, release 12.6"]
    missing = subprocess.run(
        ["bash", "-c", f'source "{common}"; cuda_build_env; echo unreachable'],
        env={"CUDA_HOME": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "nvcc not found" in missing.stderr and "unreachable" not in missing.stdout
    install = (ROOT / "deploy/jetson/install.sh").read_text()
    assert install.index("cuda_build_env") < install.index("pycuda==")  # set before pycuda's build


# == round 2 (issue 33): outputs that would destroy inputs, parts of a model file that disagree ======
def test_an_output_that_names_an_input_or_another_output_is_refused(tmp_path, brightness_model, sign_video) -> None:
    model, clip = brightness_model(tmp_path / "m.onnx"), sign_video(frames=5)
    before = {path: Path(path).read_bytes() for path in (model, clip)}
    shared = tmp_path / "both.jsonl"
    cases = (
        (["--jsonl", shared, "--events", shared], "--jsonl and --events name the same file"),
        (["--save-video", clip], "is --source's own file"),
        (["--jsonl", model], "is the model's own file"),
        (["--events", tmp_path / "." / "m.onnx"], "is the model's own file"),  # another spelling of the path
    )
    for options, message in cases:
        result = detect(model, "--source", clip, "--every-frame", "--headless", *options)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert {path: Path(path).read_bytes() for path in (model, clip)} == before and not shared.exists()


def test_absurd_thread_counts_are_refused_at_once(tmp_path, brightness_model, sign_video) -> None:
    result = detect(brightness_model(tmp_path / "m.onnx"), "--source", sign_video(frames=2), "--threads", "100000")
    assert result.returncode == 2 and "threads=100000: give 1 to" in result.stderr


def test_a_model_whose_metadata_names_other_classes_than_its_output_is_refused(tmp_path, brightness_model) -> None:
    from bienbao.runtime.metadata import METADATA_KEY, MetadataError, ModelMetadata, Quantization

    path = Path(brightness_model(tmp_path / "m.onnx"))  # its output: 4 + 2 rows
    model = onnx.load(path)
    three = ModelMetadata(names=("a", "b", "c"), imgsz=(320, 320), quantization=Quantization("fp32"))
    model.metadata_props[0].value = three.to_json()
    assert model.metadata_props[0].key == METADATA_KEY
    onnx.save(model, path)
    with pytest.raises(MetadataError, match="predicts 2 classes, its metadata names 3"):
        Detector(path)
    result = detect(path, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--max-frames", "1", "--headless")
    assert result.returncode == 2 and "do not belong together" in result.stderr


# == issue 32 item 4: the CSI camera as a board owner meets it ======================================
def test_csi_flip_is_set_from_the_command_line_and_checked() -> None:
    assert "flip-method=2" in parse_source("csi", flip=2).target
    assert (
        "sensor-id=1" in parse_source("csi:1", flip=6).target
        and "flip-method=6" in parse_source("csi:1", flip=6).target
    )
    with pytest.raises(ValueError, match="flip-method is one of 0 \\(none\\)"):
        parse_source("csi", flip=9)
    result = detect(SHIPPED, "--source", "csi", "--csi-flip", "9", "--max-frames", "1")
    assert result.returncode == 2 and "flip-method is one of" in result.stderr


def test_a_csi_camera_without_gstreamer_in_opencv_says_so() -> None:
    import cv2

    from bienbao.runtime.capture import _has_gstreamer, _open_with_cv2

    if _has_gstreamer(cv2):
        pytest.skip("this OpenCV has GStreamer: the message is for builds without it (pip's opencv-python)")
    with pytest.raises(OSError, match="built without GStreamer") as error:
        _open_with_cv2(parse_source("csi"))
    assert "system OpenCV" in str(error.value) and "cannot open video source" not in str(error.value)


def test_model_dir_must_exist_and_a_bad_manifest_is_refused_while_the_run_goes_on(tmp_path) -> None:
    result = detect(SHIPPED, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--model-dir", tmp_path / "nope")
    assert result.returncode == 2 and "--model-dir" in result.stderr and "no such folder" in result.stderr
    (tmp_path / "updates").mkdir()
    (tmp_path / "updates/manifest.json").write_text('{"model": "../../etc/passwd", "sha256": "x"}')
    result = detect(
        SHIPPED, "--source", ROOT / "datasets/vn-signs-sample.mp4", "--every-frame", "--headless",
        "--max-frames", "150", "--model-dir", tmp_path / "updates",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "model update refused, the running model stays" in result.stderr
        and "a file name in the folder" in result.stderr
    )

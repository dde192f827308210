"""``bienbao detect``: live sign detection from a camera, a stream or a video file.

Registered through the ``bienbao.commands`` entry points; this module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from bienbao.core.files import check_distinct_paths, file_sha256

from .backends import BACKENDS, PRECISIONS, backend_label, split_options

__all__ = ["register_detect", "register_monitor"]


def register_detect(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "detect",
        help="live traffic-sign detection (camera, CSI, RTSP, video file)",
        description="Runs an exported model on a video source, always on the newest frame (a slow model drops "
        "frames instead of lagging; drops are counted). Shows a window when a display exists, and can write an "
        "annotated video and JSON lines of detections. A camera or stream that drops is reopened with back-off. "
        "Ctrl-C or SIGTERM finish the outputs properly and print a summary.",
    )
    parser.add_argument(
        "model",
        help="exported model (.onnx, OpenVINO .xml or *_openvino_model/ folder, .engine or .tflite) with its metadata",
    )
    parser.add_argument(
        "--source",
        default="0",
        help="camera index (0), /dev/videoN, rtsp://... or http://..., csi or csi:N (Jetson CSI "
        "camera through GStreamer), or a video file (default 0)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *BACKENDS],
        help="default: from the file suffix (.onnx, .xml, .engine/.plan, .tflite)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="OpenVINO's inference precision for the float parts (default: OpenVINO's choice, bf16 on CPUs with "
        "AVX512-BF16 or AMX)",
    )
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--threads", type=int, help="CPU threads (ONNX Runtime, LiteRT)")
    parser.add_argument("--width", type=int, default=1280, help="CSI capture width")
    parser.add_argument("--height", type=int, default=720, help="CSI capture height")
    parser.add_argument("--fps", type=int, default=30, help="CSI capture frame rate")
    parser.add_argument(
        "--csi-flip",
        type=int,
        default=0,
        metavar="N",
        help="CSI sensor orientation, nvvidconv's flip-method: 0 none, 2 rotate 180 (mounted upside down), "
        "4 horizontal flip, 6 vertical flip (1, 3, 5, 7: quarter turns and diagonals)",
    )
    parser.add_argument(
        "--save-video",
        metavar="PATH",
        help="write the annotated video: PATH.mkv is one file that stays playable if power is cut; "
        "PATH.mp4 is written in segments of --video-segment seconds (PATH.mp4, PATH.0001.mp4, ...), "
        "since an mp4 cut short does not play",
    )
    parser.add_argument(
        "--video-segment", type=float, default=60.0, metavar="SECONDS", help="length of each .mp4 segment (default 60)"
    )
    parser.add_argument("--jsonl", metavar="PATH", help="write one JSON line of detections per processed frame")
    parser.add_argument(
        "--append",
        action="store_true",
        help="append to the --jsonl and --events files instead of replacing them (a service that restarts)",
    )
    events = parser.add_argument_group(
        "confirmed sign events",
        "Each sign is tracked across frames; it becomes one event once seen in K of the "
        "last N processed frames, with the majority class over its frames, its first/last time, frame count and "
        "best score. The overlay shows track ids and the speed limit in force.",
    )
    events.add_argument(
        "--events",
        metavar="PATH",
        help="write events as JSON lines: one 'confirmed' line when a sign is confirmed, one 'update' "
        "line if its class changes afterwards, one 'ended' line with its final figures when it leaves",
    )
    events.add_argument(
        "--snapshots",
        metavar="DIR",
        help="at each confirmation, save the sign's best frame and a crop of it as JPEG in DIR (their names "
        "go into the event; the live view serves them at /snapshots/NAME)",
    )
    events.add_argument(
        "--snapshots-mb",
        type=float,
        default=200.0,
        metavar="MB",
        help="most megabytes DIR may hold: the oldest snapshots are removed first (default 200)",
    )
    events.add_argument(
        "--clips",
        type=float,
        metavar="SECONDS",
        help="with --snapshots: also a clip of SECONDS before and after each confirmation (MP4 in DIR, named "
        "in the event; the frames before it are held in memory: about SECONDS x FPS x 0.7 MB at 640x360)",
    )
    events.add_argument(
        "--gps",
        metavar="DEVICE",
        help="a GPS receiver's serial device (NMEA 0183, e.g. /dev/ttyACM0): events carry its fix (lat, lon, "
        "speed, altitude) while it is valid and fresh, no field otherwise",
    )
    parser.add_argument(
        "--model-dir",
        metavar="DIR",
        help='watch DIR for model updates: when DIR/manifest.json ({"model": FILE, "sha256": HEX}) names '
        "another file, its SHA-256 and metadata are checked, it is loaded beside the running model and "
        "swapped in between two frames (input size and classes may change); a candidate that fails a "
        "check is refused with its reason and the running model stays",
    )
    events.add_argument(
        "--confirm",
        metavar="K/N",
        default="3/5",
        type=_k_of_n,
        help="confirm a sign seen in K of the last N processed frames (default 3/5)",
    )
    events.add_argument(
        "--max-missed",
        type=int,
        default=10,
        metavar="FRAMES",
        help="a track ends after this many processed frames without its sign (default 10)",
    )
    serve = parser.add_argument_group(
        "live view in a browser",
        "A page with the annotated stream (MJPEG), the live figures and the events. "
        "Frames are encoded only while a browser watches, at most --serve-fps a second.",
    )
    serve.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="serve the live view there; PORT or :PORT binds 127.0.0.1 (this board only); a network "
        "address such as 0.0.0.0:8080 is an explicit choice (use --serve-token with it)",
    )
    serve.add_argument(
        "--serve-token",
        metavar="TOKEN",
        default=os.environ.get("BIENBAO_SERVE_TOKEN"),
        help="require ?token=TOKEN (or an 'Authorization: Bearer TOKEN' header) on every request "
        "(default: $BIENBAO_SERVE_TOKEN)",
    )
    serve.add_argument("--serve-fps", type=float, default=5.0, help="most stream frames a second (default 5)")
    feed = parser.add_argument_group(
        "fleet feed (MQTT)",
        "Events (and optionally detections) go to an MQTT broker through an on-disk queue: "
        "nothing is lost while the broker or the network is down (oldest dropped first past --queue-max, and "
        "counted), and a restarted detect sends what is still queued. Each message carries the board id, the "
        "model's hash and a sequence number. Topics: TOPIC/BOARD/event and TOPIC/BOARD/detections.",
    )
    feed.add_argument(
        "--publish",
        metavar="mqtt[s]://[USER@]HOST[:PORT]/TOPIC",
        help="publish to this broker and topic (mqtts:// for TLS, port 8883 by default)",
    )
    _mqtt_security_arguments(feed)
    feed.add_argument(
        "--publish-detections", action="store_true", help="also publish each frame's detections (frames with any)"
    )
    feed.add_argument("--board-id", help="this board's id in topics and messages (default: the host name)")
    feed.add_argument(
        "--queue",
        metavar="PATH",
        help="the on-disk queue (default: "
        "$BIENBAO_STATE_DIR, $STATE_DIRECTORY or ~/.local/state/bienbao, file mqtt-queue.sqlite)",
    )
    feed.add_argument("--queue-max", type=int, default=100000, help="most queued messages (default 100000)")
    display = parser.add_mutually_exclusive_group()
    display.add_argument("--show", action="store_true", help="force the on-screen window")
    display.add_argument("--headless", action="store_true", help="never open a window")
    parser.add_argument(
        "--every-frame",
        action="store_true",
        help="video files: process every frame in order instead of playing at the file's frame rate",
    )
    parser.add_argument("--max-frames", type=int, help="stop after this many processed frames")
    parser.add_argument("--ascii-names", action="store_true", help="draw class slugs instead of Vietnamese names")
    parser.add_argument("--font", help="TrueType font for Vietnamese names (default: DejaVu Sans if installed)")
    parser.set_defaults(handler=_detect, prog=parser.prog)
    return parser


def _k_of_n(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N with 1 <= K <= N, e.g. 3/5")
    return int(k), int(n)


def _mqtt_security_arguments(group: Any) -> None:
    group.add_argument(
        "--mqtt-password-file",
        metavar="FILE",
        help="the broker password, first line of FILE (default: $BIENBAO_MQTT_PASSWORD, else the URL's; "
        "a password in the URL shows in the process list)",
    )
    group.add_argument("--mqtt-ca", metavar="FILE", help="mqtts://: the CA certificate that signed the broker's")
    group.add_argument("--mqtt-cert", metavar="FILE", help="mqtts://: a client certificate (with --mqtt-key)")
    group.add_argument("--mqtt-key", metavar="FILE", help="mqtts://: the client certificate's private key")


def _mqtt_security(args: argparse.Namespace) -> Any:
    from .publish import MqttSecurity

    return MqttSecurity(args.mqtt_password_file, args.mqtt_ca, args.mqtt_cert, args.mqtt_key)


def _status_printer(command: str) -> Any:
    from .redact import redact

    return lambda message: print(f"bienbao {command}: {redact(message)}", file=sys.stderr, flush=True)


def _state_dir() -> Path:
    for variable in ("BIENBAO_STATE_DIR", "STATE_DIRECTORY"):  # STATE_DIRECTORY: systemd's StateDirectory=
        if os.environ.get(variable):
            return Path(os.environ[variable].split(":")[0])
    return Path.home() / ".local" / "state" / "bienbao"


def _view_and_feed(args: argparse.Namespace) -> tuple[Any, Any]:
    """The live view and the MQTT publisher that ``args`` ask for (each may be None)."""
    view = publisher = None
    model_hash = file_sha256(args.model)[:16] if (args.serve or args.publish) else ""
    if args.serve:
        from .serve import LiveView, parse_serve_address

        host, port = parse_serve_address(args.serve)
        view = LiveView(host, port, token=args.serve_token, max_fps=args.serve_fps)
        view.info = {"model": Path(args.model).name, "model_hash": model_hash}

        if view.exposed and not view.token:
            print(
                f"bienbao detect: the live view listens on {host}, reachable from the network, without a "
                "token: anyone who can reach this board sees the camera (use --serve-token)",
                file=sys.stderr,
            )
    if args.publish:
        from .publish import MqttPublisher

        try:
            publisher = MqttPublisher(
                args.publish,
                board=args.board_id,
                model=model_hash,
                queue=Path(args.queue) if args.queue else _state_dir() / "mqtt-queue.sqlite",
                max_queued=args.queue_max,
                on_status=_status_printer("detect"),
                security=_mqtt_security(args),
            )
        except BaseException:
            if view is not None:
                view.close()
            raise
    return view, publisher


def _detector_factory(args: argparse.Namespace) -> Any:
    """``make(path) -> Detector`` with the command line's backend, thresholds and options (those
    the backend does not take said once and left out): the model at start and any update."""
    from .detector import Detector

    asked = {"threads": args.threads, "precision": args.precision}
    options, ignored = split_options(args.backend, args.model, {k: v for k, v in asked.items() if v})
    for option in ignored:
        print(
            f"bienbao detect: --{option} does not apply to the {args.backend} backend of {args.model}: ignored",
            file=sys.stderr,
        )
    return lambda path: Detector(path, backend=args.backend, conf=args.conf, iou=args.iou, **options)


def _model_watcher(args: argparse.Namespace, make: Any) -> Any:
    if not args.model_dir:
        return None
    from .model_update import ModelWatcher

    return ModelWatcher(args.model_dir, make, file_sha256(args.model), _status_printer("detect"))


def _snapshot_store(args: argparse.Namespace) -> Any:
    if not args.snapshots:
        return None
    from .snapshots import SnapshotStore

    return SnapshotStore(args.snapshots, args.snapshots_mb)


def _board_extras(args: argparse.Namespace, make: Any, fps: float) -> dict[str, Any]:
    """The optional parts of a board's run: snapshots, model updates, GPS (each None when not asked)."""
    gps = None
    if args.gps:
        from .gps import NmeaReader

        gps = NmeaReader(args.gps)
    snapshots = _snapshot_store(args)
    clips = None
    if args.clips is not None:
        if snapshots is None:
            raise ValueError("--clips needs --snapshots DIR: the clips are written there")
        from .snapshots import ClipRecorder

        clips = ClipRecorder(snapshots, args.clips, fps)  # played at the source's rate
    return {"snapshots": snapshots, "clips": clips, "model_watcher": _model_watcher(args, make), "gps": gps}


def _live_outputs(args: argparse.Namespace, show: bool, view: Any, publisher: Any, extras: dict[str, Any]) -> Any:
    from .live import LiveOutputs

    if view is not None:
        view.snapshots = extras["snapshots"]
    for part in ("model_watcher", "gps"):
        if extras[part] is not None:
            extras[part].start()
    return LiveOutputs(
        video=args.save_video,
        video_segment_seconds=args.video_segment,
        jsonl=args.jsonl,
        events=args.events,
        append=args.append,
        show=show,
        view=view,
        publisher=publisher,
        publish_detections=args.publish_detections,
        **extras,
    )


def _start_and_announce(
    args: argparse.Namespace, detector: Any, source: Any, annotator: Any, show: bool, view: Any, publisher: Any
) -> None:
    """Start the live view, and say on stderr what runs: model, backend and provider, source, outputs."""
    print(
        f"bienbao detect: {args.model} ({backend_label(detector.backend)}, "
        f"{detector.input_size[1]}x{detector.input_size[0]}) "
        f"on {source.kind} {source.label}; names in {'Vietnamese' if annotator.vietnamese else 'ASCII'}"
        f"{'; window' if show else '; headless'}",
        file=sys.stderr,
    )
    if view is not None:
        from ._deps import MissingDependencyError

        try:
            from .metrics import LiveMetrics

            label = backend_label(detector.backend)
            view.metrics = LiveMetrics(view.info["model"], view.info["model_hash"], label)
        except MissingDependencyError as exc:  # the view runs without /metrics; say how to get it
            print(f"bienbao detect: no /metrics or /healthz: {exc}", file=sys.stderr)
        view.start()
        # the token stays off the journal: whoever set it has it
        shown = view.url.split("?", 1)[0] + ("?token=<your --serve-token>" if view.token else "")
        print(f"bienbao detect: live view at {shown}", file=sys.stderr)
    if publisher is not None:
        queued = len(publisher.queue)
        print(
            f"bienbao detect: publishing to {publisher.url} as board {publisher.board!r} (queue "
            f"{publisher.queue.path}{f', {queued} messages from an earlier run' if queued else ''})",
            file=sys.stderr,
        )


def _detect(args: argparse.Namespace) -> int:
    from bienbao.core import UserError

    from ._deps import MissingDependencyError
    from .capture import LatestFrameCapture
    from .draw import Annotator
    from .live import OutputError, run_live
    from .metadata import MetadataError
    from .sources import parse_source
    from .tracking import SignTracker, TrackerConfig

    try:
        source = parse_source(args.source, args.width, args.height, args.fps, args.csi_flip)
        check_distinct_paths(
            {"--save-video": args.save_video, "--jsonl": args.jsonl, "--events": args.events, "--queue": args.queue},
            {"--source": args.source if source.kind == "file" else None, "the model": args.model},
        )
        make = _detector_factory(args)
        detector = make(args.model)
        tracker = SignTracker(
            TrackerConfig(confirm_hits=args.confirm[0], confirm_window=args.confirm[1], max_missed=args.max_missed),
            detector.names,
        )
        capture = LatestFrameCapture(
            source,
            realtime=not args.every_frame,
            on_status=_status_printer("detect"),
        )
        view, publisher = _view_and_feed(args)
        extras = _board_extras(args, make, capture.fps)
    except (FileNotFoundError, OSError, ValueError, MetadataError, MissingDependencyError) as exc:
        raise UserError(str(exc)) from exc
    show = args.show or (not args.headless and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    annotator = Annotator(vietnamese=not args.ascii_names, font=args.font)
    _start_and_announce(args, detector, source, annotator, show, view, publisher)
    outputs = _live_outputs(args, show, view, publisher, extras)
    failure = None
    try:
        stats = run_live(
            detector, capture, stop, annotator=annotator, max_frames=args.max_frames, outputs=outputs, tracker=tracker
        )
    except OutputError as exc:  # what was written is whole; say what failed, after the summary
        stats, failure = exc.stats, exc
    except OSError as exc:  # an output that could not even be opened (a read-only folder)
        raise UserError(str(exc)) from exc
    finally:
        if view is not None:
            view.close()
        feed = publisher.close() if publisher is not None else None
    summary = {**stats.summary(), "backend": backend_label(detector.backend)}
    feed_failure = publisher.failure() if publisher is not None else None
    if feed is not None:
        summary["publish"] = {**feed, "failure": feed_failure}
    _print_summary(summary, tracker.discarded, feed)
    if failure is not None:
        raise UserError(f"stopped: {failure}")
    if feed_failure is not None:
        raise UserError(f"the fleet feed failed: {feed_failure}")
    return 0


def _print_summary(summary: dict[str, Any], discarded: int, feed: dict[str, Any] | None) -> None:
    """The run's summary: one JSON line on stdout, and the same in words on stderr."""
    print(json.dumps({"summary": summary}), flush=True)
    print(
        f"processed {summary['frames_processed']} frames ({summary['frames_dropped']} dropped), "
        f"latency mean {summary['latency_mean_ms']} ms p95 {summary['latency_p95_ms']} ms, "
        f"{summary['fps']} FPS; {summary['events']} signs confirmed ({discarded} unconfirmed tracks "
        "discarded)",
        file=sys.stderr,
    )
    if feed is not None:
        print(
            f"published {feed['sent']} messages, {feed['queued']} still queued for the next run, "
            f"{feed['dropped']} dropped (queue full) in all",
            file=sys.stderr,
        )


def register_monitor(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "monitor",
        help="watch a fleet's sign events from an MQTT broker (a live table per board)",
        description="Subscribes to TOPIC/+/event (and detections) on the broker that boards publish to with "
        "`bienbao detect --publish`, drops duplicates by (board, sequence number), and shows a live table per "
        "board: confirmed signs, the last one, messages, sequence gaps (messages that never arrived) and "
        "duplicates dropped. On a terminal the table is redrawn every second; otherwise one line per event.",
    )
    parser.add_argument(
        "url", metavar="mqtt[s]://[USER@]HOST[:PORT]/TOPIC", help="the broker and the boards' topic (mqtts:// for TLS)"
    )
    _mqtt_security_arguments(parser)
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--lines", action="store_true", help="one line per new message, even on a terminal")
    parser.add_argument("--vietnamese", action="store_true", help="sign names in Vietnamese")
    parser.add_argument(
        "--client-id",
        default="bienbao-monitor",
        help="a fixed id keeps this consumer's session on the broker between runs (default bienbao-monitor)",
    )
    parser.set_defaults(handler=_monitor, prog=parser.prog)
    return parser


def _monitor(args: argparse.Namespace) -> int:
    import time

    from bienbao.core import UserError

    from ._deps import MissingDependencyError
    from .fleet import FleetSubscriber
    from .publish import parse_mqtt_url

    try:
        url = parse_mqtt_url(args.url)
        security = _mqtt_security(args)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc
    lines = args.lines or not sys.stdout.isatty()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def print_event(message: dict[str, Any]) -> None:
        if lines and message["kind"] == "event":
            row = {"board": message["board"], "seq": message["seq"], **message["data"]}
            print(json.dumps(row, ensure_ascii=False), flush=True)

    say = _status_printer("monitor")
    try:
        feed = FleetSubscriber(url, security, args.client_id, say, print_event)
    except (ValueError, MissingDependencyError) as exc:
        raise UserError(str(exc)) from exc
    feed.start()
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    try:
        while not (stop.is_set() or feed.stopped.is_set()) and (deadline is None or time.monotonic() < deadline):
            stop.wait(1.0)
            if not feed.ever_connected and feed.unreachable is None and time.monotonic() - started > 10:
                feed.unreachable = "no answer within 10 s"
                say(f"no answer from the broker {feed.where} within 10 s (still trying)")
            if not lines:
                with feed.lock:
                    table = feed.monitor.table(args.vietnamese)
                print("\x1b[2J\x1b[H" + table, flush=True)
    finally:
        feed.close()
    with feed.lock:
        print(feed.monitor.table(args.vietnamese), file=sys.stderr)
    failure = feed.failure()
    if failure is not None:
        raise UserError(failure)
    return 0

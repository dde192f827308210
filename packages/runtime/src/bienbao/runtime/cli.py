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

from .backends import BACKENDS

__all__ = ["register_detect"]


def register_detect(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "detect", help="live traffic-sign detection (camera, CSI, RTSP, video file)",
        description="Runs an exported model on a video source, always on the newest frame (a slow model drops "
        "frames instead of lagging; drops are counted). Shows a window when a display exists, and can write an "
        "annotated video and JSON lines of detections. A camera or stream that drops is reopened with back-off. "
        "Ctrl-C or SIGTERM finish the outputs properly and print a summary.")
    parser.add_argument("model", help="exported model (.onnx, .engine or .tflite) with bienbao metadata")
    parser.add_argument("--source", default="0",
                        help="camera index (0), /dev/videoN, rtsp://... or http://..., csi or csi:N (Jetson CSI "
                        "camera through GStreamer), or a video file (default 0)")
    parser.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                        help="default: from the file suffix (.onnx, .engine/.plan, .tflite)")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--threads", type=int, help="CPU threads (ONNX Runtime, LiteRT)")
    parser.add_argument("--width", type=int, default=1280, help="CSI capture width")
    parser.add_argument("--height", type=int, default=720, help="CSI capture height")
    parser.add_argument("--fps", type=int, default=30, help="CSI capture frame rate")
    parser.add_argument("--save-video", metavar="PATH", help="write the annotated video (mp4)")
    parser.add_argument("--jsonl", metavar="PATH", help="write one JSON line of detections per processed frame")
    parser.add_argument("--append", action="store_true",
                        help="append to the --jsonl file instead of replacing it (a service that restarts)")
    display = parser.add_mutually_exclusive_group()
    display.add_argument("--show", action="store_true", help="force the on-screen window")
    display.add_argument("--headless", action="store_true", help="never open a window")
    parser.add_argument("--every-frame", action="store_true",
                        help="video files: process every frame in order instead of playing at the file's frame rate")
    parser.add_argument("--max-frames", type=int, help="stop after this many processed frames")
    parser.add_argument("--ascii-names", action="store_true", help="draw class slugs instead of Vietnamese names")
    parser.add_argument("--font", help="TrueType font for Vietnamese names (default: DejaVu Sans if installed)")
    parser.set_defaults(handler=_detect, prog=parser.prog)
    return parser


def _detect(args: argparse.Namespace) -> int:
    from bienbao.cli import CommandError

    from ._deps import MissingDependencyError
    from .capture import LatestFrameCapture
    from .detector import Detector
    from .draw import Annotator
    from .live import run_live
    from .metadata import MetadataError
    from .sources import parse_source

    try:
        source = parse_source(args.source, args.width, args.height, args.fps)
        options = {"threads": args.threads} if args.threads else {}
        detector = Detector(args.model, backend=args.backend, conf=args.conf, iou=args.iou, **options)
        capture = LatestFrameCapture(source, realtime=not args.every_frame)
    except (FileNotFoundError, OSError, ValueError, MetadataError, MissingDependencyError) as exc:
        raise CommandError(str(exc)) from exc
    show = args.show or (not args.headless and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    annotator = Annotator(vietnamese=not args.ascii_names, font=args.font)
    print(f"bienbao detect: {args.model} ({detector.backend.name}, {detector.input_size[1]}x{detector.input_size[0]}) "
          f"on {source.kind} {args.source}; names in {'Vietnamese' if annotator.vietnamese else 'ASCII'}"
          f"{'; window' if show else '; headless'}", file=sys.stderr)
    stats = run_live(detector, capture, stop, video=args.save_video, jsonl=args.jsonl, append=args.append, show=show,
                     annotator=annotator, max_frames=args.max_frames)
    summary = stats.summary()
    print(json.dumps({"summary": summary}), flush=True)
    print(f"processed {summary['frames_processed']} frames ({summary['frames_dropped']} dropped), "
          f"latency mean {summary['latency_mean_ms']} ms p95 {summary['latency_p95_ms']} ms, "
          f"{summary['fps']} FPS", file=sys.stderr)
    return 0

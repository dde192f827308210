"""``bienbao bench``: latency, memory and (Jetson) power of one or more models on this device.

Registered through the ``bienbao.commands`` entry points; imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from bienbao.core.files import atomic_write_text, check_writable
from bienbao.runtime.backends import BACKENDS, PRECISIONS, is_model_path
from bienbao.runtime.sources import IMAGE_SUFFIXES

__all__ = ["register_bench"]


def register_bench(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="latency / memory / power of models on this device (or: bench compare A.json B.json)",
        description="Measures every --model in one run, interleaved (A B A B ...), so a comparison holds while the "
        "machine's speed drifts: latency per stage (pre-process, inference, post-process, end to end) with mean, "
        "std, p50, p90, p99, throughput, load time, file size; memory in a separate pass afterwards (resident set "
        "sampled from a thread, never during the latency runs); on a Jetson the board power from tegrastats. "
        "Writes result.json (documented schema), result.md and latency.png. "
        "`bienbao bench compare A.json B.json` puts two results side by side.",
    )
    parser.add_argument("--model", action="append", default=[], help="exported model (.onnx, .engine, .tflite); repeat")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *BACKENDS],
        help="default: from the file suffix (.onnx, .engine/.plan, .tflite)",
    )
    parser.add_argument(
        "--source",
        help="a folder of images, an image or a video (default: one grey 640x360 "
        "frame; timings do not depend on the content, detections counts do)",
    )
    parser.add_argument("--frames", type=int, default=16, help="frames taken from the source (default 16)")
    parser.add_argument("--runs", type=int, default=50, help="measured runs per model (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs per model (default 5)")
    parser.add_argument("--threads", type=int, help="CPU threads (ONNX Runtime intra-op, OpenVINO, LiteRT)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="OpenVINO's inference precision for the float parts (default: OpenVINO's choice, bf16 on CPUs with "
        "AVX512-BF16 or AMX); other backends ignore it",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    parser.add_argument("--out", help="output folder (default logs/bench/<time>)")
    parser.set_defaults(handler=_bench, prog=parser.prog)
    commands = parser.add_subparsers(dest="bench_command", required=False, metavar="{compare}")
    compare = commands.add_parser(
        "compare",
        help="two result.json files side by side",
        description="Puts two `bienbao bench` results side by side: the CPU and date of each, then per model "
        "present in both the end-to-end mean latency of each, their ratio (first / second) and the peak memory.",
    )
    compare.add_argument("first", help="result.json of the reference run")
    compare.add_argument("second", help="result.json to compare with it")
    compare.set_defaults(handler=_compare, prog=compare.prog)
    return parser


def _compare(args: argparse.Namespace) -> int:
    from bienbao.core import UserError

    from . import report

    try:
        print(report.compare(report.load_result(args.first), report.load_result(args.second)))
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def _read_image(cv2, path: Path):
    image = cv2.imread(str(path))
    if image is None:  # a benchmark on other frames than asked for would mislead: say which
        raise FileNotFoundError(f"cannot read {path}: not an image OpenCV decodes (truncated or another format?)")
    return image


def _frames(source: str | None, count: int):
    import numpy as np

    from bienbao.runtime import require

    if source is None:
        return [np.full((360, 640, 3), 114, np.uint8)]
    cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
        frames = [_read_image(cv2, p) for p in files]
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        frames = [_read_image(cv2, path)]
    else:
        capture = cv2.VideoCapture(str(path))
        frames = []
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
    frames = [f for f in frames if f is not None]
    if not frames:
        raise FileNotFoundError(f"no readable frames in {source}")
    return frames


def _progress(done: int, total: int) -> None:
    print(f"\rbenchmarking: run {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def _bench(args: argparse.Namespace) -> int:
    from bienbao.core import UserError

    from . import report

    if not args.model:
        raise UserError("give at least one --model")
    missing = [m for m in args.model if not is_model_path(m)]
    if missing:
        raise UserError(f"model file not found: {', '.join(missing)}")
    if args.runs < 1:
        raise UserError(f"--runs {args.runs}: at least 1")
    if args.frames < 1:
        raise UserError(f"--frames {args.frames}: at least 1")
    out = Path(args.out or f"logs/bench/{datetime.datetime.now():%Y%m%d-%H%M%S}")
    try:  # before any measurement: a folder that cannot take the results would lose them all
        check_writable(out, "--out")
    except OSError as exc:
        raise UserError(str(exc)) from exc
    from bienbao.runtime import MissingDependencyError

    from .runner import run_benchmark

    options: dict = {}

    def save(runs, interrupted: bool, memory: str) -> dict:
        result = report.build_result(runs, {**options, "memory": memory}, interrupted)
        if result["models"]:  # each file written whole under a temporary name, then renamed
            atomic_write_text(out / "result.json", json.dumps(result, indent=2))
            atomic_write_text(out / "result.md", report.markdown(result))
        return result

    try:
        frames = _frames(args.source, args.frames)
        options.update(
            {
                "runs": args.runs,
                "warmup": args.warmup,
                "threads": args.threads,
                "precision": args.precision,
                "backend": args.backend,
                "source": args.source or "synthetic 640x360 frame",
                "frames": len(frames),
            }
        )
        # the latency figures are saved the moment they exist; the memory pass then completes them
        runs, interrupted = run_benchmark(
            args.model,
            frames,
            args.backend,
            args.runs,
            args.warmup,
            args.threads,
            memory=not args.no_memory,
            precision=args.precision,
            progress=_progress,
            measured=lambda r, i: save(r, i, "pending" if not args.no_memory else "skipped"),
        )
    except (MissingDependencyError, FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot write the results into {out}: {exc}") from exc
    try:
        result = save(runs, interrupted, "separate pass, RSS sampled every 2 ms" if not args.no_memory else "skipped")
        if not result["models"]:
            raise UserError("interrupted before any model was measured")
        chart = report.plot(result, out / "latency.png")
    except OSError as exc:
        raise UserError(f"cannot write the results into {out}: {exc}") from exc
    print(report.table(result))
    print(
        f"wrote {out / 'result.json'}, {out / 'result.md'}"
        + (f", {chart}" if chart else " (install matplotlib for latency.png)")
    )
    return 0

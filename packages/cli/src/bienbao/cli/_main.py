"""Argument parsing and dispatch for ``bienbao``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points, version

from bienbao.core import UserError

__all__ = ["COMMAND_GROUP", "build_parser", "main"]

COMMAND_GROUP = "bienbao.commands"


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser with every installed subcommand; also the commands that failed to load."""
    parser = argparse.ArgumentParser(
        prog="bienbao",
        description="Vietnamese traffic-sign detection: YOLOv8 training, INT8 quantization-aware "
        "training, export and edge inference. Subcommands come from the installed bienbao packages "
        "(run `bienbao info` to see which).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('bienbao-cli')}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    broken = []
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a package installed without what its command needs
            broken.append(f"{entry.name} ({entry.value}): {exc}")
            continue
        register(subparsers)
    return parser, broken


def main(argv: Sequence[str] | None = None) -> int:
    parser, broken = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        for line in broken:
            print(f"warning: command not available: {line}", file=sys.stderr)
        return 0
    try:
        return int(handler(args) or 0)
    except UserError as exc:  # the one place a user's error becomes a line; anything else keeps its traceback
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bienbao info | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not raise again
        return 141

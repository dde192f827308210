"""The ``bienbao`` command: discovers subcommands from the ``bienbao.commands`` entry points."""

from ._main import COMMAND_GROUP, build_parser, main

__all__ = ["COMMAND_GROUP", "build_parser", "main"]

"""The failures a user can fix, and one line from an exception a library raised.

``UserError`` is the one base of the errors a command reports as ``bienbao <cmd>: error: <message>``
with exit status 2 (bad input, a missing file, a refused combination); the ``bienbao`` dispatcher
catches it in one place, and any other exception keeps its traceback (a bug must show where it is).

One line from an exception a library raised, for a message that names the file and the reason.

ONNX Runtime, OpenVINO and ultralytics raise their own exception types with multi-line texts (a
banner, a C++ stack); a command says what went wrong in one line: ``first_line(exc)``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "UserError", "first_line"]


class UserError(Exception):
    """A failure the user can fix: printed as ``bienbao <cmd>: error: <message>``, exit status 2.

    Commands set ``prog`` with ``parser.set_defaults(handler=..., prog=parser.prog)``."""


class ConfigError(UserError, ValueError):
    """A configuration value is wrong; the message names the key and what to write instead.
    (A ``ValueError`` too: code that validated values before 0.8 keeps catching it.)"""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's first non-empty text line, at most ``limit`` characters, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

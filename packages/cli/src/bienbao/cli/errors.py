"""One line from an exception a library raised, for a message that names the file and the reason.

ONNX Runtime, OpenVINO and ultralytics raise their own exception types with multi-line texts (a
banner, a C++ stack); a command says what went wrong in one line: ``first_line(exc)``.
"""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's first non-empty text line, at most ``limit`` characters, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

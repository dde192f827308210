"""Secrets never reach a terminal or a journal: every URL, token and message that may hold one
passes through ``redact`` before it is printed or logged.

    redact("rtsp://admin:hunter2@10.0.0.7/stream")   -> "rtsp://admin:***@10.0.0.7/stream"
    redact("http://cam/?token=abc&x=1")               -> "http://cam/?token=***&x=1"
    redact("login as s3cret failed", secrets=["s3cret"]) -> "login as *** failed"
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "redact"]

MASK = "***"
# scheme://user:password@  (the password: anything up to the last @ before the host's path)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s/]*)@")
# ?token=...  &password=...  (query parameters that carry credentials)
_QUERY = re.compile(
    r"(?P<head>[?&](?:token|access_token|password|passwd|pwd|key|secret)=)(?P<secret>[^&#\s'\"]*)", re.IGNORECASE
)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (any object, as ``str``) with URL passwords, credential query parameters and each
    of ``secrets`` replaced by ``***``."""
    out = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", str(text))
    out = _QUERY.sub(lambda m: f"{m['head']}{MASK}", out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out

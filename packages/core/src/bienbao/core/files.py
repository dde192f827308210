"""Writing files so that a failure never leaves a truncated file where the real one belongs.

    with atomic_path("models/exported/model.onnx") as tmp:   # a temporary name in the same folder
        write_somehow(tmp)                                   # any writer that takes a path
    # now renamed over the final name; on any error the temporary file is removed

``os.replace`` within one folder is atomic on POSIX and Windows: a reader sees the old file or the
new one, never half of it. A full disk or a crash mid-write leaves the previous file (or none).
``check_writable`` tells before long work whether its output folder can take files at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_distinct_paths",
    "check_writable",
    "file_sha256",
]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` when the block ends without error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); the result gets the mode any new file would (umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename == str(tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(folder: str | Path, what: str = "output") -> Path:
    """Make ``folder`` if needed and prove a file can be created in it; an ``OSError`` naming the
    folder and the reason otherwise (read-only, no permission, a file in the way, full)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OSError(f"{what} folder {folder} exists and is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bienbao-write-check-"):
            pass
    except OSError as exc:
        raise OSError(f"{what} folder {folder} is not writable ({exc.strerror or exc})") from exc
    return folder


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks (models are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # hard links and other spellings of one file
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct_paths(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None]) -> None:
    """``ValueError`` when an output names an input's file, or two outputs name one file: writing
    would destroy the input, or interleave two writers' lines. Keys name the flags in the message
    (``{"--jsonl": "a.jsonl"}``); ``None`` values are skipped."""
    named_outputs = [(flag, Path(path)) for flag, path in outputs.items() if path is not None]
    named_inputs = [(flag, Path(path)) for flag, path in inputs.items() if path is not None]
    for index, (flag, path) in enumerate(named_outputs):
        for other, input_path in named_inputs:
            if _same(path, input_path):
                raise ValueError(f"{flag} {path} is {other}'s own file: writing there would destroy it")
        for other, other_path in named_outputs[index + 1 :]:
            if _same(path, other_path):
                raise ValueError(f"{flag} and {other} name the same file {path}: give each its own")

"""atomic_path: the final file is the old one or the new one, never half of either."""

from __future__ import annotations

import pytest

from bienbao.core.files import atomic_path, atomic_write_text, check_writable


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_partial(tmp_path) -> None:
    target = tmp_path / "report.md"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full, say")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"


def test_errors_name_the_file_asked_for_not_the_temporary_one(tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError) as failure:
        atomic_write_text(blocker / "inside.json", "{}")
    assert failure.value.filename == str(blocker / "inside.json")
    with pytest.raises(OSError, match="exists and is a file"):
        check_writable(blocker)
    assert check_writable(tmp_path / "new/folder").is_dir()


def test_a_written_file_gets_the_mode_of_any_new_file(tmp_path) -> None:
    """The temporary file is private (mkstemp); the result must not be: an export read by another
    user or a container would fail on a 0600 file."""
    import os

    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.md", "x")
        assert (path.stat().st_mode & 0o777) == 0o644
    finally:
        os.umask(umask)

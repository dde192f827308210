"""Every source file of every package reaches its wheel: hatchling leaves git-ignored paths out,
and an ignore pattern for run outputs (``runs/``) once hid the trainer's ``runs`` subpackage."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_no_package_source_is_git_ignored() -> None:
    sources = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.glob("packages/*/src/**/*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert len(sources) > 50  # the glob saw the packages
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        check=False,
        cwd=ROOT,
        input="\n".join(sources),
        capture_output=True,
        text=True,
    )
    ignored = done.stdout.split()
    assert not ignored, f"git-ignored, so missing from the wheels: {ignored[:10]}"

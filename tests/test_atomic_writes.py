"""Every file a command produces (reports, exports, checkpoints, sidecars) is written through
``bienbao.core.files``' atomic helpers: under a temporary name, renamed when whole. A direct write
(``path.write_text``, ``torch.save(path)``, ``open(path, "w")``...) left where a kill or a full disk
can cut it short fails this test; the few streams that must append in place (JSON lines, video
segments) say so with ``# direct write:`` and why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITES = re.compile(
    r"\.write_text\(|\.write_bytes\(|\btorch\.save\(|\bonnx\.save\(|\.export\(str\(|\bopen\([^)]*[\"'][wa]b?[\"']"
)
ATOMIC = ("atomic_path", "atomic_write_text", "atomic_write_bytes")


def direct_writes() -> list[str]:
    found = []
    for source in sorted(ROOT.glob("packages/*/src/bienbao/**/*.py")):
        lines = source.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not WRITES.search(line) or "# direct write:" in line or "def " in line:
                continue
            block = "\n".join(lines[max(0, number - 30) : number + 1])  # inside a `with atomic_path(...)`?
            if not any(f"with {helper}" in block or f"{helper}(" in block for helper in ATOMIC):
                found.append(f"{source.relative_to(ROOT)}:{number + 1}: {line.strip()}")
    return found


def test_every_file_is_written_through_the_atomic_helpers() -> None:
    assert direct_writes() == []


def test_the_check_finds_a_direct_write(tmp_path, monkeypatch) -> None:
    package = tmp_path / "packages/x/src/bienbao/x"
    package.mkdir(parents=True)
    (package / "m.py").write_text('def f(p):\n    p.write_text("half a report")\n', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert direct_writes() == ['packages/x/src/bienbao/x/m.py:2: p.write_text("half a report")']

"""bench imports beside the runtime without torch."""

from __future__ import annotations

import subprocess
import sys


def test_import_and_command_registration_do_not_pull_torch() -> None:
    code = (
        "import sys, bienbao.bench, bienbao.bench.cli, bienbao.runtime; "
        "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

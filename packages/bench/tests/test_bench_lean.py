"""bench installs beside the runtime without torch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def test_import_does_not_pull_torch() -> None:
    code = ("import sys, bienbao.bench, bienbao.runtime; "
            "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_its_declared_dependencies_are_importable() -> None:
    for module in ("numpy", "psutil", "bienbao.runtime", "bienbao.cli"):
        assert importlib.util.find_spec(module) is not None, module

"""Cross-package checks: the namespace, the shared command, the packages side by side."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

PACKAGES = ("quant", "trainer", "runtime", "bench", "cli")


def test_bienbao_is_a_namespace_shared_by_every_package() -> None:
    import bienbao

    assert getattr(bienbao, "__file__", None) is None  # PEP 420: no bienbao/__init__.py anywhere
    for package in PACKAGES:
        module = importlib.import_module(f"bienbao.{package}")
        assert module.__file__.endswith("__init__.py")


def test_one_bienbao_command_lists_every_installed_package() -> None:
    script = Path(sys.executable).parent / "bienbao"  # the console script installed beside this Python
    out = subprocess.run([str(script), "info"], capture_output=True, text=True, check=True).stdout
    for package in PACKAGES:
        assert f"bienbao-{package} " in out
    assert "torch: 2." in out


def test_help_lists_the_commands_and_stays_torch_free() -> None:
    code = (
        "import sys; from bienbao.cli import build_parser; p, broken = build_parser(); "
        "print(broken); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "False"]

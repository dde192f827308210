"""The package graph, as issue 31 drew it: ``bienbao.core`` is the floor (standard library only),
``bienbao.cli`` is the top (the dispatcher: no other package imports it), and between them each
package imports only the packages it declares. Checked on the source (every ``import`` and
``from ... import`` statement, at any depth), so a new import across a layer fails here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "quant", "trainer", "runtime", "bench", "cli")


def imported(package: str) -> dict[str, set[str]]:
    """module file -> the top-level modules it imports (``bienbao.x`` kept as ``bienbao.x``)."""
    found: dict[str, set[str]] = {}
    for source in sorted((ROOT / "packages" / package / "src").rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(source.relative_to(ROOT))] = {
            ".".join(name.split(".")[:2]) if name.startswith("bienbao.") else name.split(".")[0] for name in names
        }
    return found


def declared(package: str) -> set[str]:
    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]
    return {
        f"bienbao.{r.split('[')[0].removeprefix('bienbao-')}"
        for r in project["dependencies"]
        if r.startswith("bienbao-")
    }


def test_no_package_imports_the_dispatcher() -> None:
    offenders = [
        f"{module}: imports bienbao.cli"
        for package in PACKAGES
        if package != "cli"
        for module, names in imported(package).items()
        if "bienbao.cli" in names
    ]
    assert offenders == []


def test_core_imports_only_the_standard_library() -> None:
    outside = {
        f"{module}: {name}"
        for module, names in imported("core").items()
        for name in names
        if name not in sys.stdlib_module_names and name != "__future__" and not name.startswith("bienbao.core")
    }
    assert outside == set()


def test_each_package_imports_only_the_bienbao_packages_it_declares() -> None:
    undeclared = {
        f"{module}: {name}"
        for package in PACKAGES
        for module, names in imported(package).items()
        for name in names
        if name.startswith("bienbao.") and name not in declared(package) | {f"bienbao.{package}"}
    }
    assert undeclared == set()

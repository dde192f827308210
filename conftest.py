"""What every package's tests share: the embedded sample data and the shipped sign model.

Both live in the repository (``datasets/vn-signs-sample``, ``models/pretrained``), so the tests
run the same on a fresh clone as in CI; nothing here reads ``../shared``. Also real faults: a small
file system that fills up and a read-only one (tmpfs mounts). Standard library and
pytest only: the runtime's and bench's environments have no torch, ultralytics or PyYAML.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SAMPLE = REPO / "datasets/vn-signs-sample"
SHIPPED_FP32 = REPO / "models/pretrained/yolov8n-vn-signs-fp32.pt"


def _present(path: Path) -> Path:
    if not path.exists():  # a broken checkout, not a machine without some hardware: fail, never skip
        raise FileNotFoundError(f"{path} is missing from this checkout (it is committed with the repository)")
    return path


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The embedded sample's dataset YAML (80 real frames: train 48, valid 16, test 16)."""
    return _present(SAMPLE / "dataset.yaml")


@pytest.fixture(scope="session")
def sample_frames() -> list[Path]:
    """The sample's valid and test frames (32, from recordings the train split does not hold)."""
    return sorted(_present(SAMPLE / "valid/images").iterdir()) + sorted(_present(SAMPLE / "test/images").iterdir())


@pytest.fixture(scope="session")
def fp32_weights() -> Path:
    """The shipped FP32 sign model (models/pretrained/)."""
    return _present(SHIPPED_FP32)


def _mount(target: Path, options: str) -> None:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=False, capture_output=True, text=True
    )
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN; CI has it): {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: a real file system of ``kib`` KiB (a tmpfs) that fills up: a full disk."""
    mounted: list[Path] = []

    def make(kib: int) -> Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        _mount(target, f"size={kib}k")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def read_only_dir(tmp_path):
    """A real read-only folder (a tmpfs mounted ``ro``): even root cannot write into it, unlike a
    folder with mode 0555."""
    target = tmp_path / "read-only"
    target.mkdir()
    _mount(target, "ro,size=64k")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)

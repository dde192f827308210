"""What every package's tests share: the embedded sample data and the shipped sign model.

Both live in the repository (``datasets/vn-signs-sample``, ``models/pretrained``), so the tests
run the same on a fresh clone as in CI; nothing here reads ``../shared``. Standard library and
pytest only: the runtime's and bench's environments have no torch, ultralytics or PyYAML.
"""

from __future__ import annotations

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

"""Shared paths for the cross-package tests: ../shared beside the checkout (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASET = SHARED / "datasets/vietnam-traffic-sign-detection"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout (tests read ../shared)")
    return path


@pytest.fixture(scope="session")
def fp32_weights() -> Path:
    return _need(SHARED / "weights/vn-signs-fp32.pt")


@pytest.fixture(scope="session")
def sign_data() -> Path:
    return _need(DATASET / "dataset.yaml")


@pytest.fixture
def offline(monkeypatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")

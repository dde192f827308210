"""Cross-package fixtures (the sample data and the shipped model come from the root conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sign_data(sample_data):
    return sample_data


@pytest.fixture
def offline(monkeypatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")

"""Fixtures: real dashcam frames from ../shared (skipped without it) and a small real ONNX model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
FRAMES = SHARED / "datasets/vietnam-traffic-sign-detection/valid/images"


@pytest.fixture(scope="session")
def real_frames() -> list[np.ndarray]:
    import cv2

    if not FRAMES.is_dir():
        pytest.skip(f"{FRAMES} is not beside this checkout (tests read ../shared)")
    return [cv2.imread(str(p)) for p in sorted(FRAMES.iterdir())[:4]]

"""The runtime imports without torch, names every dataset class, and names missing extras."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bienbao.runtime import DISPLAY_NAMES, MissingDependencyError, display_name, require


def test_import_does_not_pull_torch_or_ultralytics() -> None:
    code = (
        "import sys, bienbao.runtime; "
        "print(sorted(m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_display_names_cover_the_dataset_classes(sample_data) -> None:
    line = next(x for x in sample_data.read_text().splitlines() if x.startswith("names:"))
    names = [n.strip().strip("'\"") for n in line.split("[", 1)[1].rsplit("]", 1)[0].split(",")]
    assert len(names) == 33
    assert set(names) == set(DISPLAY_NAMES)
    assert display_name("cam-re-trai") == "Cấm rẽ trái"
    assert display_name("some-other-class") == "some-other-class"


def test_a_missing_extra_is_named() -> None:
    with pytest.raises(MissingDependencyError, match=r"bienbao-runtime\[tflite\]"):
        require("a_module_that_is_not_installed", "tflite")
    assert require("json", "none").dumps([1]) == "[1]"

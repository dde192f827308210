"""The ultralytics contract: an unsupported version or a missing internal is one clear error, and
ap_per_class's results are read by name."""

from __future__ import annotations

import numpy as np
import pytest

from bienbao.trainer.ultralytics import seam


def test_the_installed_ultralytics_is_supported() -> None:
    assert seam.check_ultralytics()  # it is what the tests run on


@pytest.mark.parametrize("version", ["8.3.230", "8.4.100", "8.5.0", "9.0.1", "8.3.0.dev1"])
def test_an_unsupported_version_names_the_range(version) -> None:
    with pytest.raises(seam.UnsupportedUltralyticsError, match=r">=8\.4\.150,<8\.5.*pip install"):
        seam.check_ultralytics(version)


def test_a_missing_internal_is_named(monkeypatch) -> None:
    from ultralytics.nn.modules import Detect

    monkeypatch.delattr(Detect, "forward_head")
    with pytest.raises(seam.UnsupportedUltralyticsError, match=r"lacks ultralytics\.nn\.modules\.Detect\.forward_head"):
        seam.check_ultralytics("8.4.160")


def test_ap_per_class_by_name() -> None:
    # two classes, one perfect detection each at every IoU threshold, and one false positive of class 1
    tp = np.array([[True] * 10, [True] * 10, [False] * 10])
    result = seam.ap_per_class(tp, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 1]), np.array([0, 1]))
    assert list(result.classes) == [0, 1]
    assert result.ap.shape == (2, 10) and np.allclose(result.ap[:, 0], 1.0, atol=0.01)
    assert result.curve_precision.shape[0] == 2 and result.curve_recall.ndim == 1


def test_only_the_seam_imports_ultralytics() -> None:
    """Every module that imports ultralytics lives in bienbao/trainer/ultralytics/ (the seam)."""
    import ast
    from pathlib import Path

    import bienbao.trainer

    root = Path(bienbao.trainer.__file__).parent
    outside = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "ultralytics":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(name == "ultralytics" or name.startswith("ultralytics.") for name in names):
                outside.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not outside, f"ultralytics imported outside the seam: {outside}"
    assert (root / "ultralytics" / "qat_model.py").is_file()  # the walk saw the real tree


def test_checkpoints_pickled_under_the_old_module_names_load() -> None:
    """QAT/PTQ checkpoints written by trainer <= 0.3.0 name bienbao.trainer.yolo_qat."""
    from bienbao.trainer import yolo_qat
    from bienbao.trainer.ultralytics import qat_model

    assert yolo_qat.QATDetect is qat_model.QATDetect and yolo_qat.OnGrid is qat_model.OnGrid

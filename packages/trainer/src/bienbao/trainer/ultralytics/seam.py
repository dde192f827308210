"""The contract with ultralytics: the supported versions, the internals bienbao relies on, checked
once at import, and the one place where ultralytics' positional results get names.

bienbao-trainer extends ultralytics rather than wrapping it: the QAT block swaps subclass its
``Conv``/``C2f``/``Bottleneck``/``SPPF``/``Concat``/``Detect``, the export replaces ``DFL``, the QAT
trainer subclasses ``DetectionTrainer``. Those internals move between releases (``Detect.forward_head``
arrived in 8.4.0, the ``distill_model`` training argument the QAT distillation passes in 8.4.77, and
distillation with a validation loss that matches it by 8.4.150 (8.4.100 fails the distillation test);
on 8.3 the head's shared output grids would silently do nothing), so the range is
bounded above and both ends are tested (``nox -s "ultralytics(low)"`` runs the trainer's tests at
``LOWEST``; the normal sessions run ``constraints.txt``'s pin, the highest tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["LOWEST", "SUPPORTED", "APResult", "UnsupportedUltralyticsError", "ap_per_class", "check_ultralytics"]

#: the range pyproject.toml declares; LOWEST and constraints.txt's pin are the tested ends
SUPPORTED = ">=8.4.150,<8.5"
LOWEST = "8.4.150"
_LOW, _HIGH = (8, 4, 150), (8, 5)

#: (module, attribute) that bienbao's code reads or overrides
REQUIRED = (
    ("ultralytics.nn.modules", "Conv"),
    ("ultralytics.nn.modules", "C2f"),
    ("ultralytics.nn.modules", "Bottleneck"),
    ("ultralytics.nn.modules", "SPPF"),
    ("ultralytics.nn.modules", "Concat"),
    ("ultralytics.nn.modules", "DFL"),
    ("ultralytics.nn.modules", "Detect.forward_head"),
    ("ultralytics.nn.tasks", "load_checkpoint"),
    ("ultralytics.models.yolo.detect", "DetectionTrainer.validate"),
    ("ultralytics.utils.metrics", "ap_per_class"),
    ("ultralytics.utils.torch_utils", "unwrap_model"),
    ("ultralytics.utils.torch_utils", "select_device"),
    ("ultralytics.data", "build_yolo_dataset"),
    ("ultralytics.data.utils", "check_det_dataset"),
    ("ultralytics.cfg", "get_cfg"),
    ("ultralytics.cfg", "DEFAULT_CFG_DICT"),
)
#: training arguments bienbao passes to ultralytics' trainer (feature distillation)
REQUIRED_ARGUMENTS = ("distill_model",)


class UnsupportedUltralyticsError(ImportError):
    """The installed ultralytics is outside the supported range or lacks what bienbao uses."""


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_ultralytics(version: str | None = None) -> str:
    """Raise ``UnsupportedUltralyticsError`` with one message naming the range, else the version."""
    import importlib

    installed = version or metadata.version("ultralytics")
    fix = f"install a supported one: pip install 'ultralytics{SUPPORTED}'"
    if not _LOW <= _release(installed) < _HIGH:
        raise UnsupportedUltralyticsError(
            f"bienbao-trainer supports ultralytics {SUPPORTED} (tested at {LOWEST} and the version "
            f"constraints.txt pins); this is {installed}: {fix}"
        )
    missing = []
    for module_name, path in REQUIRED:
        try:
            target: Any = importlib.import_module(module_name)
            for part in path.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{path}")
    from ultralytics.cfg import DEFAULT_CFG_DICT

    missing += [f"the training argument {name!r}" for name in REQUIRED_ARGUMENTS if name not in DEFAULT_CFG_DICT]
    if missing:
        raise UnsupportedUltralyticsError(
            f"ultralytics {installed} lacks {', '.join(missing)}, which bienbao-trainer relies on "
            f"(supported: {SUPPORTED}): {fix}"
        )
    return installed


def setting_names() -> frozenset[str]:
    """Every training/validation setting ultralytics accepts (its ``default.yaml``)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return frozenset(DEFAULT_CFG_DICT)


@dataclass(frozen=True)
class APResult:
    """``ultralytics.utils.metrics.ap_per_class``'s twelve results, by name."""

    tp: np.ndarray
    fp: np.ndarray
    precision: np.ndarray  # per class, at the best mean F1 confidence
    recall: np.ndarray
    f1: np.ndarray
    ap: np.ndarray  # (classes, 10): AP at IoU 0.50:0.95
    classes: np.ndarray
    p_curve: np.ndarray
    r_curve: np.ndarray
    f1_curve: np.ndarray
    curve_recall: np.ndarray  # the recall points of the precision-recall curves
    curve_precision: np.ndarray  # (classes, 10, points) precision at those points


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray) -> APResult:
    from ultralytics.utils.metrics import ap_per_class as positional

    result = positional(tp, conf, pred_cls, target_cls)
    fields = APResult.__dataclass_fields__
    if len(result) != len(fields):
        raise UnsupportedUltralyticsError(
            f"ultralytics' ap_per_class returned {len(result)} values, not the {len(fields)} bienbao reads "
            f"({', '.join(fields)}): supported ultralytics {SUPPORTED}"
        )
    return APResult(*result)

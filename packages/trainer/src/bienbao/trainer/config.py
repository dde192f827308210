"""Frozen, validated configs read from ``configs/*.yaml`` (or the packaged defaults: see
``config_files`` for where files are found and what their relative paths mean).

Every file is checked on load: an unknown key or a value of the wrong type is a ``ConfigError``
naming the key and the file. Keys under ``ultralytics:`` are passed to ultralytics' trainer and
checked against ultralytics' own argument list.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bienbao.quant import ConfigError, QuantPolicy, policy_from_dict
from bienbao.trainer.config_files import PACKAGED, ConfigFile, locate_config, locate_experiment
from bienbao.trainer.formats import LAYOUTS, check_combination
from bienbao.trainer.yaml_text import parse_yaml

__all__ = [
    "DISTILLATION_METHODS",
    "CalibrationConfig",
    "ConfigError",
    "DistillationConfig",
    "EMAConfig",
    "ExportConfig",
    "Paths",
    "QATConfig",
    "QATSchedule",
    "QuantizationSetup",
    "TrainConfig",
    "load_export_config",
    "load_policy",
    "load_qat_config",
    "load_quantization",
    "load_train_config",
    "load_yaml",
    "merge",
    "read_config",
]


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (looked for {path.absolute()})")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _check_union(value: Any, options: tuple, key: str, source: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _check_type(value, option, key, source)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if errors else f"{source}: {key}: bad value {value!r}")


def _check_type(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Validate (and lightly coerce ints to floats) one value against a simple annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, typing.get_args(annotation), key, source)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, source, prefix=f"{key}.")
    if annotation is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return tuple(value)
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
        return dict(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and (
        not isinstance(value, annotation) or (annotation is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{source}: {key} must be {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, source: str, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping, naming ``source`` and the key in every error."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the file'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"allowed here: {', '.join(sorted(names))}"
        )
    values = {key: _check_type(value, hints[key], prefix + key, source) for key, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: {exc}") from exc


@dataclass(frozen=True)
class Paths:
    """Where runs write (in a config file: relative to the file's folder)."""

    checkpoints: str = "models/checkpoints"
    logs: str = "logs"
    tensorboard: str = "logs/tensorboard"


@dataclass(frozen=True)
class TrainConfig:
    """``configs/base.yaml``: the FP32 run, and the data/image settings QAT and PTQ share."""

    model: str = "yolov8n.pt"
    data: str = "datasets/vn-signs-sample/dataset.yaml"
    imgsz: int = 640
    epochs: int = 50
    batch: int = 16
    device: str | None = None
    workers: int = 2
    seed: int = 0
    name: str = "fp32"
    paths: Paths = field(default_factory=Paths)
    ultralytics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"imgsz={self.imgsz}: use a multiple of 32 (640 keeps the small signs visible)")
        for key in ("epochs", "batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: must be at least 1")
        check_ultralytics_keys(self.ultralytics)


def check_ultralytics_keys(settings: dict, where: str = "ultralytics") -> None:
    """Every key under ``ultralytics:`` must be one of ultralytics' own settings (its
    ``default.yaml``); a misspelt one is refused here, with the nearest real key, instead of
    ultralytics' usage banner and a traceback at the first epoch."""
    import difflib

    from bienbao.trainer.ultralytics.seam import setting_names

    nested = sorted(key for key, value in settings.items() if isinstance(value, Mapping))
    if nested:
        key = nested[0]
        raise ConfigError(
            f"{where}.{key}: ultralytics settings are single values, not mappings (got "
            f"{where}.{key}.{next(iter(settings[key]))}): one dotted name too many?"
        )
    known = setting_names()
    unknown = sorted(set(settings) - known)
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{where}.{key}" + (f" (did you mean {near[0]}?)" if near else ""))
        raise ConfigError(f"not an ultralytics setting: {', '.join(hints)}")


@dataclass(frozen=True)
class CalibrationConfig:
    batches: int = 32
    batch_size: int = 8
    #: keep this many layers float, the ones whose quantization alone hurts the output most on
    #: ``critical_inputs`` calibration images (bienbao.quant.rank_by_output_error); 0 = none
    critical_top_k: int = 0
    critical_inputs: int = 8
    #: after the ranges: correct each conv's bias for the mean shift its weight rounding causes,
    #: measured on the calibration batches (bienbao.quant.correct_bias; NNCF's fast bias correction)
    bias_correction: bool = False
    #: letterbox each calibration image to its own aspect (dashcam 16:9 at imgsz 640: 384x640, the
    #: shape the 16:9 exports run at) instead of the square with grey bands (needs one aspect ratio)
    rect: bool = False

    def __post_init__(self) -> None:
        for key in ("bias_correction", "rect"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"calibration.{key}={getattr(self, key)!r}: true or false")
        if self.batches < 1 or self.batch_size < 1:
            raise ValueError("calibration.batches and calibration.batch_size must be at least 1")
        if self.critical_top_k < 0 or self.critical_inputs < 1:
            raise ValueError("calibration.critical_top_k must be >= 0 and calibration.critical_inputs >= 1")


@dataclass(frozen=True)
class QATSchedule:
    """Epochs (0-based) at which each phase starts; ``null`` = never."""

    enable_weights_epoch: int = 0
    enable_activations_epoch: int = 0
    freeze_observers_epoch: int | None = None
    freeze_bn_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.enable_activations_epoch < self.enable_weights_epoch:
            raise ValueError(
                "enable_activations_epoch comes before enable_weights_epoch; progressive QAT enables weights "
                "first (or both at once: give the same epoch)"
            )
        for key in ("enable_weights_epoch", "enable_activations_epoch", "freeze_observers_epoch", "freeze_bn_epoch"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"{key}={value}: epochs count from 0")

    PHASES = ("enable_weights_epoch", "enable_activations_epoch", "freeze_bn_epoch", "freeze_observers_epoch")

    def fit(self, epochs: int) -> tuple[QATSchedule, str | None]:
        """This schedule for a run of ``epochs`` epochs, and what was changed (``None``: nothing).

        A phase at or after the last epoch would never happen (``--epochs 1`` with activations from
        epoch 1 saves a model whose activation quantizers never ran). Then every phase is scaled by
        ``epochs / (last phase + 2)`` (the packaged 1/6/8 is meant for 10 epochs: 3 epochs give
        0/1/2), rounded down, keeping their order."""
        phases = {key: getattr(self, key) for key in self.PHASES}
        set_phases = [v for v in phases.values() if v is not None]
        if all(v < epochs for v in set_phases):
            return self, None
        span = max(set_phases) + 2
        fitted = {k: (None if v is None else min(epochs - 1, v * epochs // span)) for k, v in phases.items()}
        before = ", ".join(f"{k}={v}" for k, v in phases.items() if v is not None)
        after = ", ".join(f"{k}={v}" for k, v in fitted.items() if v is not None)
        return QATSchedule(**fitted), (
            f"the QAT schedule ({before}) falls outside a {epochs}-epoch run (epochs 0-"
            f"{epochs - 1}); scaled to {after}. Set qat.schedule.* to choose"
        )


#: ``distillation.method``: what the fake-quantized student matches in its FP32 teacher
DISTILLATION_METHODS = ("output", "feature")


@dataclass(frozen=True)
class DistillationConfig:
    """Knowledge distillation from the FP32 model the run starts from.

    ``method: output`` (bienbao.trainer.ultralytics.distill): the head's class scores and DFL box distributions;
    ``method: feature``: ultralytics' feature distillation (``distill_model``, a learned projector
    per neck level). ``temperature`` applies to ``output`` only. ``labels`` weighs ultralytics' own
    (ground-truth) loss beside the distillation terms: 0 trains on the teacher's outputs alone
    (``output`` only; the QAT study's kd-only row: it did not keep the weights from drifting)."""

    enabled: bool = False
    method: str = "output"
    weight: float = 1.0
    temperature: float = 1.0
    labels: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in DISTILLATION_METHODS:
            raise ValueError(f"distillation.method={self.method!r}: choose one of {', '.join(DISTILLATION_METHODS)}")
        if self.weight <= 0:
            raise ValueError(f"distillation.weight={self.weight}: must be positive")
        if self.temperature <= 0:
            raise ValueError(f"distillation.temperature={self.temperature}: must be positive")
        if self.method == "feature" and self.temperature != 1.0:
            raise ValueError("distillation.temperature applies to method: output (feature distillation has none)")
        if self.labels < 0:
            raise ValueError(f"distillation.labels={self.labels}: the ground-truth loss weight must be 0 or more")
        if self.method == "feature" and self.labels != 1.0:
            raise ValueError(
                "distillation.labels applies to method: output (feature distillation adds to the full loss)"
            )


@dataclass(frozen=True)
class EMAConfig:
    """The weight average that is validated and saved: ultralytics' ``ModelEMA``, whose decay after
    ``t`` optimiser steps is ``decay * (1 - exp(-t / tau))``.

    ultralytics' 0.9999 and 2000 suit runs of thousands of steps. A 3-epoch QAT run on a thousand
    images makes 48 (16 an epoch at batch 16, 4 accumulated), where that decay ends at 0.024: the
    saved "average" is the last step's weights. ``tau`` of a few steps and ``decay`` of 0.9-0.95
    average the last 10-20 steps instead."""

    decay: float = 0.9999
    tau: float = 2000.0

    def __post_init__(self) -> None:
        if not 0 <= self.decay < 1:
            raise ValueError(f"ema.decay={self.decay}: must be in [0, 1) (0 keeps the last step's weights)")
        if self.tau <= 0:
            raise ValueError(f"ema.tau={self.tau}: the ramp's time constant (optimiser steps) must be positive")

    def at(self, updates: int) -> float:
        """The decay ultralytics applies at its ``updates``-th EMA update."""
        return self.decay * (1.0 - math.exp(-updates / self.tau))


@dataclass(frozen=True)
class QATConfig:
    """``configs/qat.yaml``."""

    weights: str = "models/checkpoints/fp32/best.pt"
    quantization: str = str(PACKAGED / "quantization.yaml")
    epochs: int = 10
    name: str = "qat"
    lr0: float = 0.0005
    lrf: float = 0.1
    warmup_epochs: float = 1.0
    cos_lr: bool = True
    optimizer: str = "SGD"
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    schedule: QATSchedule = field(default_factory=QATSchedule)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    ultralytics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: must be at least 1")
        if not 0 < self.lr0 < 1:
            raise ValueError(f"lr0={self.lr0}: QAT fine-tuning wants a small learning rate, e.g. 0.0005")
        check_ultralytics_keys(self.ultralytics, "qat.ultralytics")

    def ultralytics_args(self) -> dict[str, Any]:
        """The optimiser/schedule keys in ultralytics' spelling, then the pass-through keys."""
        args = {
            "lr0": self.lr0,
            "lrf": self.lrf,
            "warmup_epochs": self.warmup_epochs,
            "cos_lr": self.cos_lr,
            "optimizer": self.optimizer,
            "epochs": self.epochs,
        }
        clash = sorted(set(args) & set(self.ultralytics))
        if clash:
            raise ConfigError(f"qat config sets {', '.join(clash)} both at the top level and under ultralytics:")
        return {**args, **self.ultralytics}


@dataclass(frozen=True)
class ExportConfig:
    """``configs/export.yaml``."""

    checkpoint: str = "models/checkpoints/qat/best.pt"
    output: str = "models/exported"
    formats: tuple = ("onnx",)
    target: str = "onnxruntime"
    imgsz: int | tuple = 640  # one side (square) or [height, width], e.g. [384, 640] for a 16:9 camera
    opset: int = 17
    fp16: bool = True
    weight_bits: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", tuple(self.formats))
        if self.weight_bits not in (None, 7, 8):
            raise ValueError(
                f"weight_bits={self.weight_bits!r}: null (the width the checkpoint was trained at), 8, or 7 "
                "(ONNX Runtime on x86 without VNNI)"
            )
        check_combination(self.target, self.formats)
        object.__setattr__(self, "imgsz", _export_size(self.imgsz))


def _export_size(imgsz) -> int | tuple[int, int]:
    from bienbao.trainer.sizes import input_size

    height, width = input_size(imgsz)
    return height if height == width else (height, width)


#: The fields of each config that hold paths (resolved against the config file's folder).
TRAIN_PATHS = ("model", "data", "paths.checkpoints", "paths.logs", "paths.tensorboard")
QAT_PATHS = ("weights", "quantization")
EXPORT_PATHS = ("checkpoint", "output")


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, mapping by mapping (``{"ultralytics": {"mosaic": 0}}`` keeps the
    other ultralytics keys)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config(
    kind: str, path: str | Path | None, fields: tuple[str, ...], keep_bare: tuple[str, ...] = ()
) -> tuple[dict[str, Any], ConfigFile]:
    """The mapping in the ``kind`` config (see ``config_files``), its path fields resolved."""
    file = locate_config(kind, path)
    return file.resolve_fields(load_yaml(file.path), fields, keep_bare), file


def load_export_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> ExportConfig:
    """``overrides`` (paths relative to the working folder) merge over the file's values."""
    data, file = read_config("export", path, EXPORT_PATHS)
    data = merge(data, overrides or {})
    if "formats" in data and isinstance(data["formats"], list):
        data["formats"] = tuple(data["formats"])
    return from_dict(ExportConfig, data, file.describe())


def load_train_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    data, file = read_config("base", path, TRAIN_PATHS, keep_bare=("model",))
    return from_dict(TrainConfig, merge(data, overrides or {}), file.describe())


def load_qat_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, experiment: str | None = None
) -> QATConfig:
    """The QAT config; an ``experiment`` (a path or a name such as ``exp4_float_head``) adds its
    ``qat:`` overrides and, when it has one, its ``quantization:`` policy."""
    data, file = read_config("qat", path, QAT_PATHS)
    if experiment:
        exp = locate_experiment(experiment)
        content = load_yaml(exp.path)
        data = merge(data, exp.resolve_fields(content.get("qat") or {}, QAT_PATHS))
        if "quantization" in content:
            data["quantization"] = str(exp.path)
    return from_dict(QATConfig, merge(data, overrides or {}), file.describe())


@dataclass(frozen=True)
class QuantizationSetup:
    """A quantization file: the layer policy and the runtime whose graph it shapes."""

    policy: QuantPolicy
    target: str


def load_quantization(path: str | Path | None = None) -> QuantizationSetup:
    """``configs/quantization.yaml`` (``None``: the default one, see ``config_files``) or an
    experiment's ``quantization:`` section.

    ``target`` (a layout of ``bienbao.trainer.formats.LAYOUTS``) decides where the activation
    quantizers go; it defaults to ``tensorrt`` for the tensorrt preset, ``openvino`` for the
    openvino_cpu preset and ``onnxruntime`` otherwise.
    """
    path = locate_config("quantization", path).path
    data = load_yaml(path)
    if "quantization" in data and isinstance(data["quantization"], Mapping):  # an experiment file
        data = data["quantization"]
    data = dict(data)
    by_preset = {"tensorrt": "tensorrt", "openvino_cpu": "openvino"}
    target = data.pop("target", by_preset.get(str(data.get("preset")), "onnxruntime"))
    if target not in LAYOUTS:
        raise ConfigError(f"{path}: target {target!r} (the graph layout): write one of {', '.join(LAYOUTS)}")
    return QuantizationSetup(policy_from_dict(data, source=str(path)), target)


def load_policy(path: str | Path) -> QuantPolicy:
    """Just the layer policy of a quantization file (see ``load_quantization``)."""
    return load_quantization(path).policy

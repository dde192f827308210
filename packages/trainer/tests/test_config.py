"""Every config in configs/ loads; unknown keys and bad values name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bienbao.quant import ConfigError, QuantPolicy
from bienbao.trainer.config import QATConfig, TrainConfig, load_policy, load_qat_config, load_train_config
from bienbao.trainer.config_files import PACKAGED as CONFIGS

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_configs_load() -> None:
    assert isinstance(load_train_config(CONFIGS / "base.yaml"), TrainConfig)
    qat = load_qat_config(CONFIGS / "qat.yaml")
    assert isinstance(qat, QATConfig)
    schedule = qat.schedule  # every switch of the packaged schedule happens inside its own run
    switches = [
        schedule.enable_weights_epoch,
        schedule.enable_activations_epoch,
        schedule.freeze_bn_epoch,
        schedule.freeze_observers_epoch,
    ]
    assert all(e is not None and 0 <= e < qat.epochs for e in switches), (switches, qat.epochs)
    assert load_train_config(CONFIGS / "base.yaml").ultralytics["fliplr"] == 0.0  # mirrored signs
    for path in [CONFIGS / "quantization.yaml", *sorted((CONFIGS / "experiments").glob("*.yaml"))]:
        assert isinstance(load_policy(path), QuantPolicy), path


def test_experiments_say_what_they_promise() -> None:
    sym = load_policy(CONFIGS / "experiments/exp1_symmetric_quant.yaml").default
    assert sym.input.scheme.symmetric and sym.input.scheme.signed
    asym = load_policy(CONFIGS / "experiments/exp2_asymmetric_quant.yaml").default
    assert not asym.input.scheme.symmetric and asym.input.observer.name == "histogram"
    mixed = load_policy(CONFIGS / "experiments/exp3_mixed_precision.yaml")
    assert mixed.resolve("model.0.conv").is_float and mixed.resolve("model.22.cv2.0.1.conv").is_float
    assert mixed.resolve("model.8.cv1.conv").weight.scheme.bits == 8  # what the runtimes execute
    assert mixed.resolve("model.22.cv2.0.2").is_float


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("imgsz: 640\nepoch: 3\n", "unknown key.*epoch"),
        ("imgsz: 600\n", "multiple of 32"),
        ("batch: sixteen\n", "batch must be int"),
        ("paths:\n  logz: x\n", "paths.logz"),
    ],
)
def test_bad_train_configs_name_the_key_and_file(tmp_path, text, message) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_train_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule:\n  enable_activations_epoch: 0\n  enable_weights_epoch: 2\n", "weights first"),
        ("calibration:\n  batchez: 3\n", "calibration.batchez"),
        ("lr0: 2\n", "small learning rate"),
        ("ema:\n  decay: 1.0\n", r"ema.decay=1.0: must be in \[0, 1\)"),
        ("ema:\n  tau: 0\n", "ema.tau=0"),
    ],
)
def test_bad_qat_configs_name_the_key_and_file(tmp_path, text, message) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_qat_config(path)
    assert str(path) in str(info.value)


def test_a_missing_config_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found.*nope.yaml"):
        load_train_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "epochs, expected, changed",
    [
        (10, (0, 1, 6, 8), False),  # the packaged schedule fits its 10 epochs
        (3, (0, 0, 1, 2), True),
        (5, (0, 0, 3, 4), True),
        (1, (0, 0, 0, 0), True),
        (9, (0, 1, 6, 8), False),
    ],
)
def test_the_schedule_is_fitted_to_the_run_keeping_its_order(epochs, expected, changed) -> None:
    from bienbao.trainer.config import QATSchedule

    packaged = QATSchedule(
        enable_weights_epoch=0, enable_activations_epoch=1, freeze_bn_epoch=6, freeze_observers_epoch=8
    )
    fitted, note = packaged.fit(epochs)
    assert (
        fitted.enable_weights_epoch,
        fitted.enable_activations_epoch,
        fitted.freeze_bn_epoch,
        fitted.freeze_observers_epoch,
    ) == expected
    assert (note is not None) == changed
    never = QATSchedule(enable_activations_epoch=0, freeze_bn_epoch=None, freeze_observers_epoch=None)
    assert never.fit(1) == (never, None)  # "never" stays never

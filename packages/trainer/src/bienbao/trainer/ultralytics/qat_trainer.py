"""The QAT trainer: ultralytics' ``DetectionTrainer`` for a fake-quantized YOLOv8.

``QATDetectionTrainer`` is ultralytics' ``DetectionTrainer`` with five changes:

- ``get_model`` turns the FP32 model into the fake-quant model (``prepare_yolo_qat``), or, when
  resuming, takes the already quantized model from the checkpoint as it is;
- ``setup_model`` calibrates every quantizer on N training batches before the first step (not
  when resuming: the checkpoint carries the ranges);
- the EMA (what is validated and saved) decays as ``qat.ema`` says, not with ultralytics' ramp
  over 2000 steps, which leaves a short run's "average" equal to its last step;
- at every epoch start the schedule sets the switches (weights, then activations; observers and
  BN statistics frozen at their epochs) on the model, and copies the quantizer state into the EMA
  model, whose own observers are always off (validation never moves the ranges);
- after every validation the fake-quant metrics are written next to the FP32 model's metrics
  (``logs/<name>/drift.csv`` and TensorBoard), so a user sees when QAT recovers.

The QAT settings travel to DDP worker processes (which rebuild the trainer from ultralytics'
arguments alone) through the ``BIENBAO_QAT_SETUP`` environment variable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, RANK
from ultralytics.utils.torch_utils import unwrap_model

from bienbao.core.files import atomic_write_text
from bienbao.quant import (
    calibrate,
    correct_bias,
    enable_fake_quant,
    enable_observers,
    freeze_bn_stats,
    iter_quantizers,
    print_quant_summary,
)
from bienbao.trainer.config import QATConfig, QATSchedule, from_dict, load_quantization
from bienbao.trainer.runs.layout import append_csv
from bienbao.trainer.threads import use_all_cores
from bienbao.trainer.ultralytics.calibration import calibration_loop
from bienbao.trainer.ultralytics.distill import DistilledCriterion
from bienbao.trainer.ultralytics.models import load_detection_model
from bienbao.trainer.ultralytics.qat_model import is_quantized, prepare_yolo_qat
from bienbao.trainer.ultralytics.tensorboard import TensorBoardCallback

log = logging.getLogger("bienbao.trainer")

__all__ = ["SETUP_ENV", "SETUP_FILE", "QATDetectionTrainer", "QATSetup", "Switches", "switches_at"]

SETUP_ENV = "BIENBAO_QAT_SETUP"
SETUP_FILE = "bienbao_qat.json"


@dataclass(frozen=True)
class QATSetup:
    """Everything the QAT trainer needs beyond ultralytics' arguments."""

    qat: QATConfig
    policy_path: str
    tensorboard: str  # the run's TensorBoard folder

    def to_json(self) -> str:
        return json.dumps(
            {"qat": dataclasses.asdict(self.qat), "policy_path": self.policy_path, "tensorboard": self.tensorboard}
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> QATSetup:
        raw = json.loads(text)
        return cls(from_dict(QATConfig, raw["qat"], source), raw["policy_path"], raw["tensorboard"])


@dataclass(frozen=True)
class Switches:
    weights: bool
    activations: bool
    observing: bool
    bn_frozen: bool


def switches_at(schedule: QATSchedule, epoch: int) -> Switches:
    """The quantizer switches the schedule asks for during ``epoch`` (0-based)."""
    return Switches(
        weights=epoch >= schedule.enable_weights_epoch,
        activations=epoch >= schedule.enable_activations_epoch,
        observing=schedule.freeze_observers_epoch is None or epoch < schedule.freeze_observers_epoch,
        bn_frozen=schedule.freeze_bn_epoch is not None and epoch >= schedule.freeze_bn_epoch,
    )


def apply_switches(model: torch.nn.Module, switches: Switches, observing: bool) -> None:
    enable_fake_quant(model, switches.weights, roles=["weight"])
    enable_fake_quant(model, switches.activations, roles=["input", "output"])
    enable_observers(model, observing)
    freeze_bn_stats(model, switches.bn_frozen)


class QATDetectionTrainer(DetectionTrainer):
    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None, setup: QATSetup | None = None):
        if setup is None:  # a DDP worker: the parent process left the setup in the environment
            if SETUP_ENV not in os.environ:
                raise RuntimeError(f"QATDetectionTrainer needs a QATSetup (or ${SETUP_ENV}); use bienbao qat")
            setup = QATSetup.from_json(os.environ[SETUP_ENV], f"${SETUP_ENV}")
        os.environ[SETUP_ENV] = setup.to_json()
        self.setup = setup
        self.quantization = load_quantization(setup.policy_path)
        self.policy = self.quantization.policy
        self._needs_calibration = False
        self.fp32_metrics: dict[str, float] = {}
        super().__init__(cfg, overrides, _callbacks)
        use_all_cores(self)  # ultralytics' select_device (just run) left torch one core short on CPU
        self.tensorboard = TensorBoardCallback(setup.tensorboard)
        self.add_callback("on_pretrain_routine_end", QATDetectionTrainer._after_setup)
        self.add_callback("on_train_epoch_start", QATDetectionTrainer._at_epoch_start)
        self.add_callback("on_train_epoch_end", QATDetectionTrainer._before_validation)
        self.add_callback("on_fit_epoch_end", QATDetectionTrainer._log_drift)
        self.add_callback("on_model_save", QATDetectionTrainer._after_save)

    # -- model ---------------------------------------------------------------------------------
    def get_model(self, cfg=None, weights=None, verbose=True):
        if weights is not None and is_quantized(weights):  # resuming: the checkpoint's QAT model
            return weights
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        self._needs_calibration = True
        self._fp32_model = model  # prepare_yolo_qat copies: this stays float (critical layers re-prepare from it)
        return prepare_yolo_qat(model, self.policy, self.quantization.target)

    def setup_model(self):
        ckpt = super().setup_model()
        if self._needs_calibration:
            model = unwrap_model(self.model).to(self.device)
            calibration = self.setup.qat.calibration
            stride = max(int(model.stride.max()), 32)
            loop = calibration_loop(
                self.args,
                self.data,
                calibration.batches,
                calibration.batch_size,
                self.device,
                seed=self.args.seed,
                stride=stride,
                rect=calibration.rect,
            )
            top_k = calibration.critical_top_k
            if top_k:  # rank, keep the top K float, prepare and calibrate again
                from bienbao.trainer.ultralytics.calibration import calibration_images, prepare_calibrated

                model, _ = prepare_calibrated(
                    self._fp32_model.to(self.device),
                    self.quantization,
                    loop,
                    top_k,
                    lambda: calibration_images(
                        self.args,
                        self.data,
                        calibration.critical_inputs,
                        self.device,
                        seed=self.args.seed,
                        stride=stride,
                        rect=calibration.rect,
                    ),
                )
                self.model = model
                print_quant_summary(model, notes={c["layer"]: c["reason"] for c in model.bienbao_critical})
            else:
                calibrate(model, loop)
            if calibration.bias_correction:
                correct_bias(self.model, loop)
            self._needs_calibration = False
        return ckpt

    # -- callbacks (static: ultralytics calls them with the trainer) ----------------------------
    @staticmethod
    def _after_setup(trainer: QATDetectionTrainer) -> None:
        trainer._apply_schedule(trainer.start_epoch)
        distillation = trainer.setup.qat.distillation
        if distillation.enabled and distillation.method == "output":
            trainer._install_output_distillation()

    def _install_output_distillation(self) -> None:
        """The trained model's criterion becomes ultralytics' own plus the output-level terms against
        the FP32 checkpoint (after the EMA copy was made: the EMA, which is what gets saved and
        validated, keeps the plain criterion and never holds the teacher)."""
        model = unwrap_model(self.model)
        distillation = self.setup.qat.distillation
        base = model.init_criterion()
        model.criterion = DistilledCriterion(
            base,
            self._fp32_reference_model(),
            base.reg_max,
            distillation.weight,
            distillation.temperature,
            distillation.labels,
        )

    @staticmethod
    def _at_epoch_start(trainer: QATDetectionTrainer) -> None:
        trainer._apply_schedule(trainer.epoch)

    @staticmethod
    def _before_validation(trainer: QATDetectionTrainer) -> None:
        trainer._ranges_to_ema()  # what is validated and saved is the EMA: with the model's ranges

    def _apply_schedule(self, epoch: int) -> None:
        switches = switches_at(self.setup.qat.schedule, epoch)
        apply_switches(unwrap_model(self.model), switches, observing=switches.observing)
        if self.ema is not None:
            # every epoch: ultralytics builds a new ModelEMA (its own decay) when it resumes or recovers from a NaN
            self.ema.decay = self.setup.qat.ema.at
            self._ranges_to_ema()
            apply_switches(self.ema.ema, switches, observing=False)  # the EMA's ranges come from the model

    def _ranges_to_ema(self) -> None:
        """Copy every quantizer's ranges (scale, zero point, observer state) from the trained model
        into its EMA copy, keeping the EMA's switches. The EMA never observes; left alone, its
        ranges would be ultralytics' running average of the model's float scales beside zero
        points it does not average (integers), so they are overwritten from the model instead."""
        if self.ema is None:
            return
        pairs = zip(iter_quantizers(unwrap_model(self.model)), iter_quantizers(self.ema.ema), strict=True)
        for (_, source), (_, target) in pairs:
            observing, quantizing = target.observing, target.quantizing
            target.load_state_dict(source.state_dict())
            target.enable_observer(observing).enable_fake_quant(quantizing)

    def _fp32_reference_model(self) -> torch.nn.Module:
        """The FP32 checkpoint this run started from (``qat.weights``), float, on the run's device,
        with the run's hyperparameters (the validator computes its loss with them)."""
        model = load_detection_model(self.setup.qat.weights).to(self.device).float().eval()
        model.args = unwrap_model(self.model).args
        return model

    def _validate_fp32_reference(self) -> dict[str, float]:
        """The drift chart's reference: the FP32 checkpoint the run started from, through the same
        validator. ``self.validator`` is called, not ``self.validate()``: the latter would raise
        ``best_fitness`` to the FP32 model's, after which no QAT epoch could become best.pt."""
        ema = self.ema.ema
        self.ema.ema = self._fp32_reference_model()
        try:
            metrics = dict(self.validator(self) or {})
        finally:
            self.ema.ema = ema
        return {k: float(v) for k, v in metrics.items() if k.startswith("metrics/")}

    @staticmethod
    def _log_drift(trainer: QATDetectionTrainer) -> None:
        if RANK not in {-1, 0} or trainer.epoch >= trainer.epochs:  # not the final re-validation of best.pt
            return
        if not trainer.fp32_metrics:  # once, after the first validation (the validator needs its state)
            trainer.fp32_metrics = trainer._validate_fp32_reference()
        switches = switches_at(trainer.setup.qat.schedule, trainer.epoch)
        row: dict[str, Any] = {"epoch": trainer.epoch + 1, **dataclasses.asdict(switches)}
        for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/precision(B)", "metrics/recall(B)"):
            short = key.split("/")[1].replace("(B)", "")
            row[f"qat_{short}"] = round(float(trainer.metrics.get(key, float("nan"))), 5)
            row[f"fp32_{short}"] = round(trainer.fp32_metrics.get(key, float("nan")), 5)
        append_csv(Path(trainer.save_dir) / "drift.csv", row)
        trainer.tensorboard(trainer)
        trainer.tensorboard.log(
            {f"drift/{k}": v for k, v in row.items() if k.startswith(("qat_", "fp32_"))}, trainer.epoch + 1
        )

    @staticmethod
    def _after_save(trainer: QATDetectionTrainer) -> None:
        atomic_write_text(Path(trainer.save_dir) / SETUP_FILE, trainer.setup.to_json())

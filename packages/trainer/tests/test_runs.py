"""Tiny real runs on CPU: FP32 training, QAT (schedule, frozen ranges, resume) and PTQ.

A handful of real frames at a small image size, one to three epochs: they check outcomes (files,
quantizers, switches, state), not accuracy.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from ultralytics import YOLO

from bienbao.quant import FakeQuantize, QATConv2d, QATConvBn2d, iter_quantizers
from bienbao.trainer.config import CalibrationConfig, ConfigError, load_qat_config, load_train_config
from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.runs.fp32 import train_fp32
from bienbao.trainer.runs.ptq import run_ptq
from bienbao.trainer.runs.qat import build_qat_trainer

REPO = Path(__file__).resolve().parents[3]
IMGSZ = 96


def train_config(data: Path, **extra):
    return load_train_config(
        CONFIGS / "base.yaml", {"data": str(data), "imgsz": IMGSZ, "batch": 4, "workers": 0, "epochs": 1, **extra}
    )


def qat_config(weights: Path, **extra):
    return load_qat_config(
        CONFIGS / "qat.yaml",
        {
            "weights": str(weights),
            "quantization": str(CONFIGS / "quantization.yaml"),
            "calibration": {"batches": 1, "batch_size": 4},
            **extra,
        },
    )


def quantizer_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Scales, zero points and observer statistics (not the on/off switches) of every quantizer."""
    state = {}
    for name, quantizer in iter_quantizers(model):
        for key, value in quantizer.state_dict().items():
            if not key.endswith("_enabled"):
                state[f"{name}.{key}"] = value.detach().clone().float()
    return state


def test_fp32_training_writes_the_documented_layout(workdir, tiny_data, fp32_weights) -> None:
    best = train_fp32(train_config(tiny_data, model=str(fp32_weights)))
    assert best == workdir / "models/checkpoints/fp32/best.pt" and best.is_file()
    assert (workdir / "models/checkpoints/fp32/last.pt").is_file()
    with (workdir / "logs/fp32/results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert list((workdir / "logs/tensorboard/fp32").glob("events.out.tfevents.*"))
    model = YOLO(str(best)).model
    assert len(model.names) == 33 and not any(isinstance(m, FakeQuantize) for m in model.modules())


def test_a_missing_pretrained_checkpoint_is_a_clear_error(workdir, tiny_data) -> None:
    from bienbao.quant import ConfigError

    with pytest.raises(ConfigError, match="yolov8n.pt not found.*--model"):
        train_fp32(train_config(tiny_data, model="yolov8n.pt"))


def test_qat_follows_its_schedule_and_freezes_ranges(workdir, tiny_data, fp32_weights) -> None:
    schedule = {
        "enable_weights_epoch": 0,
        "enable_activations_epoch": 1,
        "freeze_bn_epoch": 1,
        "freeze_observers_epoch": 2,
    }
    trainer = build_qat_trainer(train_config(tiny_data), qat_config(fp32_weights, epochs=3, schedule=schedule))
    seen: dict[int, dict] = {}

    def record(t) -> None:  # runs after the trainer's own schedule callback
        quantizers = dict(iter_quantizers(t.model))
        seen[t.epoch] = {
            "weights": all(q.quantizing for n, q in quantizers.items() if n.endswith("weight_quantizer")),
            "activations": any(q.quantizing for n, q in quantizers.items() if n.endswith("input_quantizer")),
            "observing": any(q.observing for q in quantizers.values()),
            "bn_frozen": all(bool(m.bn_frozen) for m in t.model.modules() if isinstance(m, QATConvBn2d)),
            "state": quantizer_state(t.model),
            "threads": torch.get_num_threads(),  # ultralytics set cores - 1; bienbao gives them all back
        }

    def ema_matches_model(t) -> None:  # what was validated and saved carries the trained ranges
        ema, model = quantizer_state(t.ema.ema), quantizer_state(t.model)
        ema_has_model_ranges.append(ema.keys() == model.keys() and all(torch.equal(ema[k], model[k]) for k in ema))

    ema_has_model_ranges: list[bool] = []
    trainer.add_callback("on_train_epoch_start", record)
    trainer.add_callback("on_model_save", ema_matches_model)
    trainer.train()
    assert ema_has_model_ranges == [True, True, True]
    assert {s["threads"] for s in seen.values()} == {os.cpu_count() or 1}

    assert [(s["weights"], s["activations"], s["observing"], s["bn_frozen"]) for s in seen.values()] == [
        (True, False, True, False),
        (True, True, True, True),
        (True, True, False, True),
    ]
    final = quantizer_state(trainer.model)
    assert final.keys() == seen[2]["state"].keys()
    assert all(torch.equal(final[k], seen[2]["state"][k]) for k in final)  # frozen in the last epoch

    with Path(trainer.save_dir, "drift.csv").open() as handle:
        drift = list(csv.DictReader(handle))
    assert [row["epoch"] for row in drift] == ["1", "2", "3"]
    assert {"qat_mAP50", "fp32_mAP50", "qat_mAP50-95", "fp32_mAP50-95"} <= set(drift[0])
    # the drift reference is the FP32 checkpoint the run started from, not the trained weights
    reference = trainer._fp32_reference_model()
    start = YOLO(str(fp32_weights)).model
    assert torch.equal(reference.model[0].conv.weight, start.model[0].conv.weight.float())
    assert not any(isinstance(m, FakeQuantize) for m in reference.modules())
    # validating the reference leaves best.pt's selection alone (validate() would raise best_fitness
    # to the FP32 model's, and no QAT epoch after the first could become best.pt)
    trainer.best_fitness = -1.0
    trainer._validate_fp32_reference()
    assert trainer.best_fitness == -1.0

    checkpoint = torch.load("models/checkpoints/qat/best.pt", weights_only=False)
    model = checkpoint["ema"] or checkpoint["model"]
    assert type(model.model[22].cv2[0][2]) is QATConv2d  # the head's final convs: quantized, no BN
    assert type(model.model[22].dfl.conv) is nn.Conv2d  # float by policy
    assert type(model.model[0].conv) is nn.Conv2d and type(model.model[1].conv) is nn.Conv2d  # float by policy
    assert isinstance(model.model[2].cv1.conv, QATConvBn2d) and model.model[2].cv1.conv.input_quantizer is not None
    assert all(q.scale.dtype == torch.float32 for _, q in iter_quantizers(model))  # saved in half, scales not


def test_the_saved_average_decays_as_qat_ema_says(workdir, tiny_data, fp32_weights) -> None:
    """Replaying the configured EMA over the weights after each optimiser step gives the saved
    average; ultralytics' own ramp (0.9999, 2000 steps) would have given the last step's weights."""
    from bienbao.trainer.config import EMAConfig

    ema = EMAConfig(decay=0.6, tau=1.0)
    qat = qat_config(fp32_weights, epochs=2, ema={"decay": ema.decay, "tau": ema.tau}, ultralytics={"nbs": 4})
    trainer = build_qat_trainer(train_config(tiny_data), qat)
    layer = "model.2.cv1.conv.weight"
    steps: list[torch.Tensor] = []
    start: list[torch.Tensor] = []

    def after_setup(t) -> None:
        start.append(t.ema.ema.state_dict()[layer].detach().clone())

    def after_batch(t) -> None:  # the EMA is updated right after each optimiser step
        if t.ema.updates > len(steps):
            steps.append(t.model.state_dict()[layer].detach().clone())

    trainer.add_callback("on_pretrain_routine_end", after_setup)
    trainer.add_callback("on_train_batch_end", after_batch)
    trainer.train()
    assert len(steps) == trainer.ema.updates >= 3

    def replay(decay) -> torch.Tensor:
        average = start[0].clone()
        for t, weights in enumerate(steps, start=1):
            average = torch.lerp(average, weights.to(average.dtype), 1 - decay(t))
        return average

    saved = trainer.ema.ema.state_dict()[layer]
    torch.testing.assert_close(saved, replay(ema.at), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(saved, steps[-1], rtol=1e-5, atol=1e-7)  # an average, not the last step
    assert torch.allclose(replay(EMAConfig().at), steps[-1], rtol=1e-2, atol=1e-4)  # what ultralytics' ramp keeps


def test_interrupted_qat_resumes_with_identical_quantizer_state(workdir, tiny_data, fp32_weights) -> None:
    train, qat = train_config(tiny_data), qat_config(fp32_weights, epochs=2, name="myrun")
    other = workdir / "models/checkpoints/qat"  # another run, under the config's default name
    other.mkdir(parents=True)
    (other / "best.pt").write_bytes(b"another run's checkpoint")
    trainer = build_qat_trainer(train, qat)

    def interrupt(t) -> None:
        if t.epoch == 0:
            raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first epoch was saved

    trainer.add_callback("on_model_save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    last = Path(trainer.wdir) / "last.pt"
    saved = quantizer_state(torch.load(last, weights_only=False)["ema"])

    # resumed with the default config (name "qat"), as `bienbao qat --resume logs/myrun/weights/last.pt` does
    resumed = build_qat_trainer(train, qat_config(fp32_weights, epochs=2), resume=str(last))
    captured = {}
    resumed.add_callback("on_pretrain_routine_end", lambda t: captured.update(quantizer_state(t.model)))
    resumed.train()
    assert resumed.start_epoch == 1
    assert captured.keys() == saved.keys() and len(saved) > 100
    assert all(torch.equal(captured[k], saved[k]) for k in saved)
    # the resumed run wrote its own checkpoints, and left the other run's alone
    assert (other / "best.pt").read_bytes() == b"another run's checkpoint" and not (other / "last.pt").exists()
    mine = workdir / "models/checkpoints/myrun/last.pt"
    assert torch.load(mine, weights_only=False)["epoch"] == -1  # the finished run's final checkpoint
    assert resumed.layout.tensorboard == workdir / "logs/tensorboard/myrun"
    with pytest.raises(ConfigError, match="finished, there is nothing left to train"):
        build_qat_trainer(train, qat, resume=str(Path(resumed.wdir) / "last.pt"))


def test_a_schedule_longer_than_the_run_is_scaled_to_it_and_said(workdir, tiny_data, fp32_weights, caplog) -> None:
    trainer = build_qat_trainer(train_config(tiny_data), qat_config(fp32_weights, epochs=1))  # packaged 1/6/8
    schedule = trainer.setup.qat.schedule
    assert (schedule.enable_activations_epoch, schedule.freeze_bn_epoch, schedule.freeze_observers_epoch) == (0, 0, 0)
    assert "falls outside a 1-epoch run" in caplog.text


def test_ptq_writes_a_checkpoint_that_ultralytics_validates(workdir, tiny_data, fp32_weights) -> None:
    output = run_ptq(
        train_config(tiny_data),
        str(fp32_weights),
        str(CONFIGS / "quantization.yaml"),
        CalibrationConfig(batches=1, batch_size=4),
    )
    checkpoint = torch.load(output, weights_only=False)
    assert checkpoint["bienbao"]["kind"] == "ptq"
    quantizers = list(iter_quantizers(checkpoint["model"]))
    assert quantizers and all(q.has_qparams and q.quantizing and not q.observing for _, q in quantizers)
    # scored at 640 (at 96 px the tiny signs vanish and every model scores 0: a bound that cannot fail)
    settings = {"data": str(tiny_data), "imgsz": 640, "batch": 4, "workers": 0, "plots": False, "verbose": False}
    quantized, fp32 = YOLO(str(output)).val(**settings).box.map50, YOLO(str(fp32_weights)).val(**settings).box.map50
    assert fp32 > 0.2  # the shipped model finds signs on the tiny subset
    assert quantized >= 0.6 * fp32  # the fake-quantized checkpoint ultralytics loads still does


def test_distillation_from_the_fp32_teacher(workdir, tiny_data, fp32_weights) -> None:
    qat = qat_config(fp32_weights, epochs=1, distillation={"enabled": True, "method": "feature", "weight": 2.0})
    trainer = build_qat_trainer(train_config(tiny_data), qat)
    trainer.train()
    assert type(trainer.model).__name__ == "DistillationModel" and trainer.args.dis == 2.0
    assert not any(isinstance(m, FakeQuantize) for m in trainer.model.teacher_model.modules())  # FP32 teacher
    saved = torch.load("models/checkpoints/qat/best.pt", weights_only=False)
    student = saved["ema"] or saved["model"]
    assert type(student).__name__ == "DetectionModel" and list(iter_quantizers(student))


def test_a_qat_run_with_output_distillation(workdir, tiny_data, fp32_weights) -> None:
    from bienbao.trainer.ultralytics.distill import DistilledCriterion

    qat = qat_config(fp32_weights, epochs=1, distillation={"enabled": True, "method": "output", "weight": 2.0})
    trainer = build_qat_trainer(train_config(tiny_data), qat)
    trainer.train()
    assert trainer.args.distill_model is None  # not ultralytics' feature distillation
    criterion = trainer.model.criterion
    assert isinstance(criterion, DistilledCriterion) and criterion.weight == 2.0
    assert not any(isinstance(m, FakeQuantize) for m in criterion.teacher.modules())  # the FP32 teacher
    assert {"kd_cls", "kd_dfl"} <= set(trainer.loss_names)
    with (workdir / "logs/qat/results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert float(row["train/kd_cls"]) > 0 and float(row["train/kd_dfl"]) > 0  # the student differs from FP32
    saved = torch.load("models/checkpoints/qat/best.pt", weights_only=False)
    student = saved["ema"] or saved["model"]
    assert list(iter_quantizers(student))
    assert not isinstance(getattr(student, "criterion", None), DistilledCriterion)  # no teacher in the file


def test_a_ddp_worker_rebuilds_the_trainer_from_the_environment(workdir, tiny_data, fp32_weights, monkeypatch) -> None:
    """ultralytics' DDP workers construct the trainer class from its arguments alone."""
    from bienbao.trainer.ultralytics.qat_trainer import SETUP_ENV, QATDetectionTrainer

    parent = build_qat_trainer(train_config(tiny_data), qat_config(fp32_weights, epochs=4))
    monkeypatch.setenv(SETUP_ENV, parent.setup.to_json())
    worker = QATDetectionTrainer(overrides=vars(parent.args))
    assert worker.setup == parent.setup and worker.policy == parent.policy
    monkeypatch.delenv(SETUP_ENV)
    with pytest.raises(RuntimeError, match="bienbao qat"):
        QATDetectionTrainer(overrides=vars(parent.args))


def test_calibration_batches_are_letterboxed_square_or_at_the_frames_own_aspect(tiny_data) -> None:
    import torch

    from bienbao.trainer.ultralytics.calibration import calibration_images, calibration_loop
    from bienbao.trainer.ultralytics.models import calibration_context

    context = calibration_context(tiny_data, 640, "cpu")
    shapes: list[tuple[int, ...]] = []
    probe = torch.nn.Module()
    probe.forward = lambda images: shapes.append(tuple(images.shape))  # type: ignore[method-assign]
    for rect in (False, True):
        calibration_loop(context.args, context.data, 2, 2, context.device, rect=rect)(probe)
    assert shapes == [(2, 3, 640, 640)] * 2 + [(2, 3, 384, 640)] * 2  # 640x360 frames: 16:9 -> 384x640
    image = calibration_images(context.args, context.data, 1, context.device, rect=True)[0]
    assert tuple(image.shape) == (1, 3, 384, 640) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_calibration_at_the_frames_aspect_needs_one_aspect_ratio(fresh_data) -> None:
    from PIL import Image

    from bienbao.trainer.ultralytics.calibration import calibration_loop
    from bienbao.trainer.ultralytics.models import calibration_context

    square = sorted((fresh_data.parent / "train/images").iterdir())[0]
    with Image.open(square) as image:
        image.resize((360, 360)).save(square)
    context = calibration_context(fresh_data, 640, "cpu")
    with pytest.raises(ValueError, match="several aspect ratios"):
        calibration_loop(context.args, context.data, 1, 1, context.device, rect=True)

"""Critical layers found automatically: calibrate --critical K ranks the shipped model's layers on
a few calibration images, keeps the worst K float, and says which and why (checkpoint, summary)."""

from __future__ import annotations

import torch
from torch import nn

from bienbao.quant import QATModule
from bienbao.trainer.config import CalibrationConfig, load_train_config
from bienbao.trainer.config_files import PACKAGED as CONFIGS
from bienbao.trainer.runs.ptq import run_ptq


def test_calibrate_keeps_the_critical_layers_float_and_says_why(tiny_data, fp32_weights, workdir, capsys) -> None:
    train = load_train_config(CONFIGS / "base.yaml", {"data": str(tiny_data), "imgsz": 160, "workers": 0})
    calibration = CalibrationConfig(batches=1, batch_size=2, critical_top_k=2, critical_inputs=2)
    checkpoint = run_ptq(train, str(fp32_weights), str(CONFIGS / "quantization.yaml"), calibration, name="crit")
    saved = torch.load(checkpoint, weights_only=False)
    critical = saved["bienbao"]["critical_layers"]
    assert [c["reason"].split(":")[0] for c in critical] == ["critical #1 of 61", "critical #2 of 61"]
    assert critical[0]["sqnr_db"] <= critical[1]["sqnr_db"]
    modules = dict(saved["model"].named_modules())
    for entry in critical:  # float now: a plain conv, its block without activation quantizers
        assert type(modules[entry["layer"]]) is nn.Conv2d, entry["layer"]
    assert sum(isinstance(m, QATModule) for m in modules.values()) == 61 - 2  # 61: model.0 and model.1 float by policy
    printed = capsys.readouterr().out
    assert "why" in printed and "critical #1 of 61" in printed

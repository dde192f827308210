"""Diagnostic of the QAT study: the weight average ("model soup") of QAT checkpoints trained from
one start with different seeds. If the seed spread were noise around a better common centre, the
average would score above its members' mean (the case for averaging a run's last steps,
``qat.ema``); on this model it did not (the study's soup rows, compare-soup/compare.md).

    python docs/results/qat-study/average_checkpoints.py OUT.pt QAT_A.pt QAT_B.pt [...]

then ``bienbao export --checkpoint OUT.pt`` and ``bienbao compare``. Every floating tensor is
averaged: conv weights, BN statistics, learned (LSQ) scales, observed ranges. A quantizer with an
observed scale takes its scale and zero point from the averaged range (its observer's
``compute_qparams``), so scale, zero point and range agree; a learned scale is the mean of the
learned scales, its zero point the rounded mean.
"""

import sys

import torch
from _checkpoint import load_qat, save_model

from bienbao.quant import iter_quantizers

target, sources = sys.argv[1], sys.argv[2:]
if len(sources) < 2:
    sys.exit("usage: average_checkpoints.py OUT.pt QAT_A.pt QAT_B.pt [...]")
opened = [load_qat(path) for path in sources]
checkpoint, models = opened[0][0], [model for _, model in opened]
states = [m.state_dict() for m in models]
if any(s.keys() != states[0].keys() for s in states):
    sys.exit("the checkpoints do not have the same layers and quantizers: not runs of one recipe")
average = {}
for key, value in states[0].items():
    if value.dtype.is_floating_point:
        average[key] = torch.stack([s[key] for s in states]).mean(0)
    elif "zero_point" in key:
        average[key] = torch.stack([s[key].double() for s in states]).mean(0).round().to(value.dtype)
    else:
        average[key] = value  # switches and counters: the first checkpoint's
model = models[0]
model.load_state_dict(average)
observed = 0
for _, quantizer in iter_quantizers(model):
    if not quantizer.learnable and quantizer.observer.has_data:
        quantizer.update_qparams()
        observed += 1
print(f"averaged {len(sources)} checkpoints; {observed} observed scales recomputed from the averaged ranges")
save_model(checkpoint, model, target)

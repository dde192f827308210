"""Diagnostic of the QAT study: a trained QAT checkpoint with its activation ranges observed again on
clean frames (the PTQ calibration loop: 32 letterboxed training batches of 8, seed 0), its weights
and learned weight scales kept. If two seeds of one recipe differed by their ranges, this would
bring them together; it did not (compare-recal/compare.md).

    python docs/results/qat-study/recalibrate_ranges.py QAT.pt OUT.pt DATASET.yaml

then ``bienbao export --checkpoint OUT.pt`` and ``bienbao compare``. The ranges are observed as
bienbao 0.5 observed them (``warm_start`` off), which is how the report's rows were made.
"""

import sys

import torch
from _checkpoint import load_qat, save_model

from bienbao.quant import iter_quantizers
from bienbao.trainer.ultralytics.calibration import calibration_loop
from bienbao.trainer.ultralytics.models import calibration_context

source, target, data = sys.argv[1:4]
checkpoint, model = load_qat(source)
context = calibration_context(data, 640, "cpu")
loop = calibration_loop(context.args, context.data, 32, 8, context.device, seed=0, stride=32)
activations = list(iter_quantizers(model, roles=("input", "output")))
before = {name: q.scale.detach().clone() for name, q in activations}
for _, q in activations:
    q.observer.reset()
    if hasattr(q.observer, "warm_start"):
        q.observer.warm_start = False
    q.enable_observer(True).enable_fake_quant(False)
for _, q in iter_quantizers(model, roles=("weight",)):
    q.enable_observer(False).enable_fake_quant(True)  # the weights as trained, on their grid
with torch.no_grad():
    loop(model)
changes = []
for name, q in activations:
    q.update_qparams()
    q.enable_observer(False).enable_fake_quant(True)
    changes.append((name, float((q.scale / before[name]).mean())))
changes.sort(key=lambda change: abs(change[1] - 1), reverse=True)
print(f"{len(activations)} activation quantizers; largest scale changes (new / trained):")
for name, ratio in changes[:12]:
    print(f"  {name:50s} {ratio:.3f}")
save_model(checkpoint, model, target)

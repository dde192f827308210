"""Diagnostic of the QAT study: a QAT checkpoint's weights pulled back towards the FP32 model it
started from, ``alpha * QAT + (1 - alpha) * FP32`` (conv weights and BN statistics; the
quantizers, ranges and learned scales stay the QAT run's). It asks, for the cost of an export
instead of a training run, whether the drift of the weights away from FP32 (docs/results/qat-study:
any 3 epochs lowered this near-converged model) is what the INT8 file loses, and whether a
weight-distance penalty is worth a run. Halfway back (0.5) and all the way (0) gave nothing above
the runs' mean or PTQ (the study's blend rows, compare-interp/compare.md).

    python docs/results/qat-study/interpolate_to_fp32.py QAT.pt FP32.pt ALPHA OUT.pt

then ``bienbao export --checkpoint OUT.pt`` and ``bienbao compare``.
"""

import sys

from _checkpoint import load_qat, save_model

from bienbao.trainer.config import load_quantization
from bienbao.trainer.ultralytics.models import load_detection_model
from bienbao.trainer.ultralytics.qat_model import prepare_yolo_qat

qat_path, fp32_path, alpha_text, target = sys.argv[1:5]
alpha = float(alpha_text)
checkpoint, model = load_qat(qat_path)
setup = load_quantization(None)  # the packaged policy: the layout the QAT checkpoint was trained in
start = prepare_yolo_qat(load_detection_model(fp32_path).float(), setup.policy, setup.target).state_dict()
state = model.state_dict()
if start.keys() != state.keys():
    sys.exit("the FP32 model prepared with the packaged policy does not have the QAT checkpoint's layout")
moved = 0
for key, value in state.items():
    if "quantizer" in key or not value.dtype.is_floating_point:
        continue
    state[key] = alpha * value + (1 - alpha) * start[key]
    moved += 1
model.load_state_dict(state)
print(f"{moved} weight and BN tensors at {alpha} QAT + {1 - alpha:g} FP32; quantizers kept")
save_model(checkpoint, model, target)

"""bienbao's one seam to ultralytics: every module that imports ultralytics lives here.

Importing this package first makes torchvision's NMS usable on a CPU-only torch
(``torchvision_ops``), then checks that the installed ultralytics is in the supported range and has
every internal bienbao relies on (``seam``): an unsupported one fails here, with one message naming
the range, instead of deep inside a training run.

- ``seam``: the supported range, the internals checked, ultralytics' metrics read by name;
- ``qat_model``: the fake-quant YOLOv8 (block swaps per layout, the head, ``prepare_yolo_qat``);
- ``qat_trainer``: ultralytics' ``DetectionTrainer`` running QAT (schedule, EMA ranges, drift);
- ``distill``: output-level distillation (the criterion wrapper);
- ``calibration``: calibration batches from ultralytics' data pipeline;
- ``models``: checkpoints loaded, trained, validated and predicted through ultralytics;
- ``export_heads``: the Detect head and DFL in export form;
- ``tensorboard``: the per-epoch trainer callback.
"""

from bienbao.trainer.ultralytics.seam import check_ultralytics
from bienbao.trainer.ultralytics.torchvision_ops import ensure_torchvision_ops

ensure_torchvision_ops()
check_ultralytics()

__all__ = ["check_ultralytics", "ensure_torchvision_ops"]

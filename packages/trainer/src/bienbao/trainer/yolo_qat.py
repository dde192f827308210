"""Where checkpoints written by bienbao-trainer 0.3.0 and earlier find their QAT block classes.

A QAT or PTQ checkpoint is a pickled model: it names each class by the module it was defined in,
and those files name ``bienbao.trainer.yolo_qat`` (the shipped ``models/pretrained/*qat*.pt``
among them). The classes now live in ``bienbao.trainer.ultralytics.qat_model``; this module only
lets the old files load. New code imports from there.
"""

from bienbao.trainer.ultralytics.qat_model import (
    QATSPPF,
    OnGrid,
    QATBottleneck,
    QATC2f,
    QATConcat,
    QATConvBlock,
    QATDetect,
    QATSiLU,
    QATUpsample,
)

__all__ = [
    "QATSPPF",
    "OnGrid",
    "QATBottleneck",
    "QATC2f",
    "QATConcat",
    "QATConvBlock",
    "QATDetect",
    "QATSiLU",
    "QATUpsample",
]

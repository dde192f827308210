"""Training runs: ``fp32`` (``bienbao train``), ``ptq`` (``bienbao calibrate``), ``qat``
(``bienbao qat``), and ``layout``, what they share (output folders, ultralytics arguments, the
dataset check). The ultralytics trainers they drive live in ``bienbao.trainer.ultralytics``."""

"""Scoring and reading models: ``evaluate`` (one model, one evaluator for every format),
``compare`` (several models on the same frames, with a paired bootstrap: ``bootstrap``) and
``analyze`` (per-layer error, sensitivity, activation histograms, the QAT drift chart)."""

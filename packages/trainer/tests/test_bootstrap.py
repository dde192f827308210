"""The paired bootstrap over images: a difference and its 95% interval, on constructed results
whose truth is known (the same per-image statistics the runtime evaluator records)."""

from __future__ import annotations

import numpy as np
import pytest

from bienbao.trainer.evaluation.bootstrap import paired_difference
from bienbao.trainer.evaluation.evaluate import Evaluation


def evaluation(found: list[bool], split: str = "val+test") -> Evaluation:
    """One labelled sign per image (class 0); where ``found``, one detection matching it at every IoU
    threshold, else one false positive."""
    stats = {"tp": [], "conf": [], "pred_cls": [], "target_cls": []}
    for hit in found:
        stats["target_cls"].append(np.zeros(1, np.int64))
        stats["tp"].append(np.full((1, 10), hit, bool))
        stats["conf"].append(np.array([0.9 if hit else 0.95], np.float32))
        stats["pred_cls"].append(np.zeros(1, np.int64))
    return Evaluation(
        "m", "d.yaml", split, "bienbao.runtime", len(found), len(found), 0.0, 0.0, 0.0, 0.0, per_image=stats
    )


def test_a_model_against_itself_differs_by_nothing_with_a_zero_width_interval() -> None:
    rng = np.random.default_rng(1)
    same = evaluation(list(rng.random(60) > 0.4))
    diff = paired_difference(same, same, resamples=200)
    assert diff.map50_95 == 0 and diff.map50_95_ci == (0.0, 0.0) and diff.images == 60


def test_a_clearly_better_model_has_an_interval_above_zero_and_a_noisy_one_spans_it() -> None:
    rng = np.random.default_rng(2)
    base = list(rng.random(200) > 0.5)
    better = [hit or rng.random() < 0.5 for hit in base]  # finds every sign base finds, and half the others
    diff = paired_difference(evaluation(base), evaluation(better), resamples=300)
    assert diff.map50_95 > 0.1 and diff.map50_95_ci[0] > 0
    shuffled = list(rng.permutation(base))  # as good on average, different images: no real difference
    noisy = paired_difference(evaluation(base), evaluation(shuffled), resamples=300)
    assert noisy.map50_95_ci[0] < 0 < noisy.map50_95_ci[1]


def test_results_on_other_frames_or_without_per_image_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="same frames"):
        paired_difference(evaluation([True] * 5), evaluation([True] * 6))
    with pytest.raises(ValueError, match="same frames"):
        paired_difference(evaluation([True] * 5), evaluation([True] * 5, split="test"))
    checkpoint = Evaluation("m.pt", "d.yaml", "val+test", "ultralytics", 5, 5, 0.5, 0.3, 0.5, 0.5)
    with pytest.raises(ValueError, match="per-image results"):
        paired_difference(checkpoint, evaluation([True] * 5))

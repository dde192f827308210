"""How sure a difference in mAP is: a paired bootstrap over images.

Two models scored on the same frames (``Evaluation.per_image``) are compared by resampling the
images with replacement (the same draw for both models), recomputing each model's mAP50 and
mAP50-95 on every draw with ultralytics' ``ap_per_class``, and taking the 2.5th and 97.5th
percentiles of the difference. A difference whose interval excludes 0 holds on these frames; with
300 signs a one-point swing between runs is common, which is why a 0.3-point claim needs this.

    diff = paired_difference(reference_eval, other_eval, resamples=1000)
    diff.map50_95, diff.map50_95_ci      # other minus reference, points of mAP x 100 as fractions
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bienbao.trainer.evaluation.evaluate import Evaluation

__all__ = ["Difference", "paired_difference"]


@dataclass(frozen=True)
class Difference:
    """``other`` minus ``reference`` (fractions: 0.01 is one mAP point), with 95% intervals."""

    map50: float
    map50_95: float
    map50_ci: tuple[float, float]
    map50_95_ci: tuple[float, float]
    resamples: int
    images: int

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lo, hi = self.map50_95_ci
        return f"{self.map50_95 * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]"


def _maps(stats: dict[str, list], index: np.ndarray) -> tuple[float, float]:
    from bienbao.trainer.ultralytics.seam import ap_per_class

    pick = lambda key, empty: np.concatenate([stats[key][i] for i in index]) if len(index) else empty  # noqa: E731
    target = pick("target_cls", np.zeros(0))
    tp = pick("tp", np.zeros((0, 10), bool))
    if not len(target) or not len(tp):
        return 0.0, 0.0
    ap = ap_per_class(tp, pick("conf", np.zeros(0)), pick("pred_cls", np.zeros(0)), target).ap
    return float(ap[:, 0].mean()), float(ap.mean())


def paired_difference(reference: Evaluation, other: Evaluation, resamples: int = 1000, seed: int = 0) -> Difference:
    """``other`` minus ``reference`` on the same images, with a paired bootstrap 95% interval."""
    if reference.per_image is None or other.per_image is None:
        raise ValueError(
            "a paired comparison needs per-image results: both models scored through "
            "bienbao.runtime (exported files), not ultralytics' validator"
        )
    count = len(reference.per_image["target_cls"])
    if count != len(other.per_image["target_cls"]) or reference.data != other.data or reference.split != other.split:
        raise ValueError("a paired comparison needs both models scored on the same frames (same data and split)")
    if resamples < 1:
        raise ValueError(f"resamples={resamples}: at least 1")
    everything = np.arange(count)
    base, compared = _maps(reference.per_image, everything), _maps(other.per_image, everything)
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, 2))
    for row in range(resamples):
        index = rng.integers(0, count, count)
        a, b = _maps(reference.per_image, index), _maps(other.per_image, index)
        draws[row] = (b[0] - a[0], b[1] - a[1])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return Difference(
        compared[0] - base[0],
        compared[1] - base[1],
        (float(low[0]), float(high[0])),
        (float(low[1]), float(high[1])),
        resamples,
        count,
    )

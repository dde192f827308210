"""Summary statistics of latency samples (milliseconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LatencyStats"]


@dataclass(frozen=True)
class LatencyStats:
    count: int
    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, samples_ms) -> LatencyStats:
        values = np.asarray(list(samples_ms), dtype=np.float64)
        if values.size == 0:
            raise ValueError("no latency samples")
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(
            int(values.size),
            float(values.mean()),
            float(values.std(ddof=1)) if values.size > 1 else 0.0,
            float(p50),
            float(p90),
            float(p99),
            float(values.min()),
            float(values.max()),
        )

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

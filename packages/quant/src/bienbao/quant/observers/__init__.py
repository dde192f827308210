"""Observers: min-max, moving-average min-max and histogram (percentile or MSE)."""

from ._base import OBSERVERS, Observer, ObserverNotReadyError, register_observer
from .histogram import HistogramObserver
from .minmax import MinMaxObserver, MovingAverageMinMaxObserver

__all__ = [
    "OBSERVERS",
    "HistogramObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "ObserverNotReadyError",
    "register_observer",
]

"""bienbao.bench: latency, memory and (on Jetson) power profiling on the device (torch-free)."""

from .report import SCHEMA, SCHEMA_VERSION, build_result, compare, load_result
from .runner import STAGES, run_benchmark
from .stats import LatencyStats
from .tegrastats import TegraSample, TegrastatsSampler, parse_tegrastats

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "STAGES",
    "LatencyStats",
    "TegraSample",
    "TegrastatsSampler",
    "build_result",
    "compare",
    "load_result",
    "parse_tegrastats",
    "run_benchmark",
]

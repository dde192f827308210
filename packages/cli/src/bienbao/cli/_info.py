"""``bienbao info``: which bienbao packages, commands and key libraries this machine has."""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, distributions, entry_points, version

from bienbao.core.cpu import describe_cpu

from ._main import COMMAND_GROUP

#: Libraries whose presence decides what this machine can do (looked up, never imported:
#: importing torch on a Jetson that has only the runtime would be slow or fail).
OPTIONAL_LIBRARIES = (
    "torch",
    "ultralytics",
    "onnxruntime",
    "openvino",
    "tensorrt",
    "pycuda",
    "ai_edge_litert",
    "tflite_runtime",
    "cv2",
    "numpy",
    "paho",
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "info", help="show installed bienbao packages, commands and libraries", description=__doc__
    )
    parser.set_defaults(handler=run, prog=parser.prog)
    return parser


def bienbao_distributions() -> dict[str, str]:
    found = {}
    for dist in distributions():
        name = dist.metadata["Name"] or ""
        if name.lower().startswith("bienbao-"):
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def library_versions() -> dict[str, str | None]:
    result = {}
    for module in OPTIONAL_LIBRARIES:
        if importlib.util.find_spec(module) is None:
            result[module] = None
            continue
        dist_name = {
            "cv2": "opencv-python",
            "ai_edge_litert": "ai-edge-litert",
            "tflite_runtime": "tflite-runtime",
            "paho": "paho-mqtt",
        }.get(module, module)
        try:
            result[module] = version(dist_name)
        except PackageNotFoundError:
            result[module] = "installed (not from a wheel)"
    return result


def run(args: argparse.Namespace) -> int:
    print(f"Python {sys.version.split()[0]} on {platform.machine()} ({platform.platform()})")
    cpu = describe_cpu()
    print(f"CPU: {cpu['name']}; {', '.join(cpu['isa']) or 'no SIMD flags read'}; int8: {cpu['int8']}")
    print("bienbao packages:")
    for name, ver in bienbao_distributions().items():
        print(f"  {name} {ver}")
    print("commands:", ", ".join(sorted(e.name for e in entry_points(group=COMMAND_GROUP))))
    print("libraries:")
    for module, ver in library_versions().items():
        print(f"  {module}: {ver or 'not installed'}")
    return 0

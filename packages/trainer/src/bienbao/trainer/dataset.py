"""Check a YOLO dataset before training and report every problem once, with file names.

| problem | severity | why |
| --- | --- | --- |
| dataset YAML missing or unreadable, no ``train``/``val`` split | error | nothing to train on |
| an images folder (or its ``labels`` twin) missing, or a split with no images | error | |
| a label line that is not numbers, or has 2-4 or an even number of values | error | unreadable |
| a class id that is not an integer in ``[0, nc)`` | error | a wrong label, not a typo to guess |
| a box coordinate outside ``[0, 1]`` | error | ultralytics would silently drop the label |
| an image that does not decode | error | ultralytics would silently skip it |
| polygon lines (``class x1 y1 x2 y2 x3 y3 ...``) only | warning | ultralytics uses their bounding boxes |
| a file mixing polygon and box lines | warning | ultralytics skips that image entirely |
| an image without a label file, or with an empty one | warning | trained as background |
| a label file without an image | warning | ignored |
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from PIL import Image, UnidentifiedImageError

from bienbao.runtime.sources import IMAGE_SUFFIXES  # the one definition
from bienbao.trainer.yaml_text import parse_yaml

__all__ = [
    "DatasetError",
    "DatasetReport",
    "DatasetSpec",
    "Problem",
    "check_dataset",
    "dataset_names",
    "label_path",
    "load_dataset",
    "split_dirs",
]


class DatasetError(ValueError):
    """The dataset has errors (the message lists them with file names)."""


@dataclass(frozen=True)
class Problem:
    severity: Literal["error", "warning"]
    kind: str
    path: str
    detail: str = ""


@dataclass
class DatasetReport:
    data: Path
    images: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def format(self, examples: int = 5) -> str:
        """Errors in full; warnings grouped by kind with a few example files."""
        lines = [f"dataset {self.data}: " + ", ".join(f"{split} {n} images" for split, n in self.images.items())]
        for problem in self.errors:
            lines.append(f"  ERROR {problem.kind}: {problem.path}" + (f" ({problem.detail})" if problem.detail else ""))
        grouped: dict[str, list[Problem]] = defaultdict(list)
        for problem in self.warnings:
            grouped[problem.kind].append(problem)
        for kind, problems in grouped.items():
            shown = ", ".join(Path(p.path).name + (f" ({p.detail})" if p.detail else "") for p in problems[:examples])
            more = f" and {len(problems) - examples} more" if len(problems) > examples else ""
            lines.append(f"  warning: {len(problems)} x {kind}: {shown}{more}")
        if not self.problems:
            lines.append("  no problems found")
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise DatasetError(f"{len(self.errors)} dataset error(s):\n{self.format()}")


def _load_yaml(data: Path) -> dict:
    if not data.is_file():
        raise DatasetError(f"dataset YAML not found: {data}")
    try:
        config = parse_yaml(data.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DatasetError(f"{data}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise DatasetError(f"{data}: expected a mapping with train/val/names")
    return config


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset YAML, read and resolved once: its class names and each split's image folders."""

    path: Path
    config: dict = field(compare=False, repr=False)
    names: tuple[str, ...]
    splits: dict = field(compare=False)  # split -> [image folder, ...]


@functools.lru_cache(maxsize=16)
def _spec(path: Path, _mtime_ns: int) -> DatasetSpec:
    config = _load_yaml(path)
    names = config.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list):
        raise DatasetError(f"{path}: 'names' must be a list or a mapping of class id to name")
    return DatasetSpec(path, config, tuple(names), split_dirs(path, config))


def load_dataset(data: str | Path) -> DatasetSpec:
    """The dataset YAML at ``data`` (each file parsed once per process, again only if it changes)."""
    path = Path(data)
    if not path.is_file():
        raise DatasetError(f"dataset YAML not found: {path}")
    return _spec(path.absolute(), path.stat().st_mtime_ns)  # absolute, not resolved: a symlinked YAML keeps its folder


def dataset_names(data: str | Path) -> list[str]:
    """Class names of a dataset YAML (list or {id: name} form)."""
    return list(load_dataset(data).names)


def check_names(model_names, data_names, model: str | Path, data: str | Path) -> None:
    """A model scored on a dataset must know the same classes in the same order; the error says
    which differ (a count, or the first mismatches by index)."""
    model_names, data_names = tuple(model_names), tuple(data_names)
    if model_names == data_names:
        return
    if len(model_names) != len(data_names):
        raise ValueError(
            f"{model} was trained on {len(model_names)} classes, {data} has {len(data_names)}: "
            f"it cannot be scored on it (model: {', '.join(model_names[:3])}, ...; data: "
            f"{', '.join(data_names[:3])}, ...)"
        )
    differ = [f"{i}: {m!r} vs {d!r}" for i, (m, d) in enumerate(zip(model_names, data_names, strict=True)) if m != d]
    raise ValueError(
        f"{model} and {data} have {len(model_names)} classes each but {len(differ)} differ by name "
        f"(model vs data): {'; '.join(differ[:4])}{' ...' if len(differ) > 4 else ''}"
    )


def split_dirs(data: Path, config: dict) -> dict[str, list[Path]]:
    root = data.parent
    if config.get("path"):
        root = Path(config["path"]) if Path(config["path"]).is_absolute() else data.parent / config["path"]
    splits = {}
    for split in ("train", "val", "test"):
        value = config.get(split)
        if value is None:
            if split != "test":
                raise DatasetError(f"{data}: no '{split}' split")
            continue
        entries = value if isinstance(value, list) else [value]
        splits[split] = [Path(e) if Path(e).is_absolute() else root / e for e in entries]
    return splits


def label_path(image: Path) -> Path:
    parts = list(image.parts)
    index = len(parts) - 1 - parts[::-1].index("images")
    parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def _check_label_file(path: Path, nc: int) -> Iterable[Problem]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        yield Problem("warning", "empty label file (background image)", str(path))
        return
    boxes = polygons = 0
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"line {number}"
        try:
            values = [float(f) for f in fields]
        except ValueError:
            yield Problem("error", "label line is not numbers", str(path), f"{where}: {line.strip()[:60]}")
            continue
        if not all(math.isfinite(v) for v in values):
            yield Problem(
                "error", "label line has a NaN or infinite number", str(path), f"{where}: {line.strip()[:60]}"
            )
            continue
        count = len(values)
        if count != 5 and (count < 7 or count % 2 == 0):
            yield Problem(
                "error",
                "label line has the wrong number of values",
                str(path),
                f"{where}: {count} values, expected 5 (class x y w h) or a polygon",
            )
            continue
        class_id = values[0]
        if class_id != int(class_id) or not 0 <= class_id < nc:
            yield Problem("error", "class id out of range", str(path), f"{where}: {fields[0]} (nc={nc})")
        if any(v < 0.0 or v > 1.0 for v in values[1:]):
            yield Problem("error", "coordinate outside [0, 1]", str(path), f"{where}: {line.strip()[:60]}")
        elif count == 5 and (values[3] <= 0.0 or values[4] <= 0.0):
            yield Problem(
                "warning",
                "box of zero width or height (ultralytics drops it: a lost sign)",
                str(path),
                f"{where}: {line.strip()[:60]}",
            )
        boxes, polygons = boxes + (count == 5), polygons + (count > 5)
    if polygons and boxes:
        yield Problem(
            "warning",
            "label file mixes polygon and box lines (ultralytics skips the whole image)",
            str(path),
            f"{polygons} polygon(s), {boxes} box(es)",
        )
    elif polygons:
        yield Problem(
            "warning",
            "polygon label lines (ultralytics trains on their bounding boxes)",
            str(path),
            f"{polygons} polygon(s)",
        )


def _check_image(path: Path) -> Problem | None:
    try:
        with Image.open(path) as image:
            image.verify()  # the file's structure ...
        with Image.open(path) as image:
            image.load()  # ... and its pixels: a JPEG cut short passes verify() but not a full decode
    except (OSError, UnidentifiedImageError, SyntaxError, ImportError) as exc:
        # ImportError: once ultralytics is imported, PIL's open retries an unidentified file with
        # an optional HEIF plugin, whose import fails offline. Either way the file does not decode.
        return Problem("error", "image does not decode", str(path), str(exc)[:80])
    return None


def _check_folder(folder: Path, split: str, nc: int, decode_images: bool, report: DatasetReport) -> int:
    """Check one images folder and its labels twin; returns the number of images."""
    if not folder.is_dir():
        report.problems.append(Problem("error", f"missing images folder for '{split}'", str(folder)))
        return 0
    labels = folder.parent / "labels"
    if folder.name != "images" or not labels.is_dir():
        report.problems.append(
            Problem(
                "error",
                f"missing labels folder for '{split}'",
                str(labels),
                "labels must sit in a 'labels' folder beside 'images'",
            )
        )
        return 0
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    expected = set()
    for image in images:
        label = label_path(image)
        expected.add(label)
        if label.is_file():
            report.problems.extend(_check_label_file(label, nc))
        else:
            report.problems.append(Problem("warning", "image without a label file (background)", str(image)))
        if decode_images and (problem := _check_image(image)):
            report.problems.append(problem)
    report.problems.extend(
        Problem("warning", "label file without an image", str(label))
        for label in sorted(labels.rglob("*.txt"))
        if label not in expected
    )
    return len(images)


def check_dataset(
    data: str | Path, splits: Iterable[str] = ("train", "val", "test"), decode_images: bool = True
) -> DatasetReport:
    """Check the dataset described by ``data`` (a YOLO dataset YAML); never raises for data problems
    (it reports them), only for an unreadable YAML. ``report.raise_for_errors()`` stops a run."""
    data = Path(data)
    spec = load_dataset(data)
    config, nc = spec.config, len(spec.names)
    if "nc" in config and config["nc"] != nc:
        raise DatasetError(f"{data}: nc={config['nc']} but {nc} names are given")
    report = DatasetReport(data)
    for split, folders in spec.splits.items():
        if split not in splits:
            continue
        errors_before = len(report.errors)
        count = sum(_check_folder(folder, split, nc, decode_images, report) for folder in folders)
        report.images[split] = count
        if count == 0 and len(report.errors) == errors_before:
            report.problems.append(Problem("error", f"no images in split '{split}'", str(folders[0])))
    return report

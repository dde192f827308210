"""The dataset check on real frames, and on copies broken on purpose."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bienbao.trainer.dataset import DatasetError, check_dataset


def first_label(data: Path, split: str = "train") -> Path:
    return sorted((data.parent / split / "labels").glob("*.txt"))[0]


def test_the_real_subset_has_no_errors(tiny_data) -> None:
    report = check_dataset(tiny_data)
    assert report.errors == []
    assert report.images == {"train": 8, "val": 4}
    report.raise_for_errors()


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("33 0.5 0.5 0.1 0.1", "class id out of range"),
        ("1.5 0.5 0.5 0.1 0.1", "class id out of range"),
        ("3 1.2 0.5 0.1 0.1", "coordinate outside [0, 1]"),
        ("3 0.5 0.5 0.1", "wrong number of values"),
        ("3 0.5 0.5 0.1 0.1 0.2", "wrong number of values"),
        ("three 0.5 0.5 0.1 0.1", "not numbers"),
    ],
)
def test_a_broken_label_line_is_an_error_naming_the_file(fresh_data, line, kind) -> None:
    label = first_label(fresh_data)
    label.write_text(label.read_text().rstrip("\n") + "\n" + line)  # also: no trailing newline
    report = check_dataset(fresh_data)
    assert [(p.kind, Path(p.path).name) for p in report.errors] == [(p.kind, label.name) for p in report.errors]
    assert any(kind in p.kind for p in report.errors)
    with pytest.raises(DatasetError, match=label.name):
        report.raise_for_errors()


def test_polygons_and_background_images_are_warnings(fresh_data) -> None:
    labels = sorted((fresh_data.parent / "train" / "labels").glob("*.txt"))
    labels[0].write_text("3 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n")  # polygon only
    labels[1].write_text("3 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n4 0.5 0.5 0.1 0.1\n")  # mixed
    labels[2].write_text("")
    labels[3].unlink()
    report = check_dataset(fresh_data)
    assert report.errors == []
    kinds: dict[str, set[str]] = {}
    for problem in report.warnings:  # the sample's own labels may hold a polygon file already
        kinds.setdefault(problem.kind.split(" (")[0], set()).add(Path(problem.path).name)
    assert labels[0].name in kinds["polygon label lines"]
    assert kinds["label file mixes polygon and box lines"] == {labels[1].name}
    assert kinds["empty label file"] == {labels[2].name}
    assert kinds["image without a label file"] == {labels[3].with_suffix(".jpg").name}


def test_an_image_that_does_not_decode_and_a_missing_folder(fresh_data) -> None:
    image = sorted((fresh_data.parent / "valid" / "images").iterdir())[0]
    image.write_bytes(b"not a jpeg")
    shutil.rmtree(fresh_data.parent / "train" / "labels")
    report = check_dataset(fresh_data)
    kinds = {p.kind: p.path for p in report.errors}
    assert kinds["image does not decode"] == str(image)
    assert "missing labels folder for 'train'" in kinds


def test_check_data_command_exits_2_and_names_the_file(fresh_data) -> None:
    label = first_label(fresh_data)
    label.write_text("99 0.5 0.5 0.1 0.1\n")
    result = subprocess.run(
        [sys.executable, "-m", "bienbao.cli", "check-data", str(fresh_data)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert label.name in result.stderr and "class id out of range" in result.stderr

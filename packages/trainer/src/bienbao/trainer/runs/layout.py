"""What FP32, QAT and PTQ runs share: ultralytics arguments, the output layout, logging."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bienbao.core.files import atomic_path, file_sha256
from bienbao.trainer.config import ConfigError, TrainConfig
from bienbao.trainer.dataset import check_dataset, dataset_names

__all__ = [
    "MIRROR_PAIRS",
    "RunLayout",
    "RunLock",
    "append_csv",
    "checked_dataset",
    "claim_run",
    "file_sha256",
    "lock_run",
    "resolve_model_source",
    "resumable_last",
    "ultralytics_overrides",
]

log = logging.getLogger("bienbao.trainer")

#: Classes that a horizontal flip turns into each other (or into nothing valid).
MIRROR_PAIRS = (("cam-re-trai", "cam-re-phai"), ("cam-oto-re-trai", "cam-oto-re-phai"))
MIRROR_SENSITIVE = {
    "cac-xe-chi-duoc-re-trai",
    "huong-phai-di-vong-chuong-ngai-vat-1",
    "cam-quay-dau-xe",
    "cam-oto-quay-dau-xe",
}


class RunLayout:
    """``models/checkpoints/<name>/`` for checkpoints, ``logs/<name>/`` for ultralytics' run folder
    (its ``weights/`` too, so a run resumes from there), ``logs/tensorboard/<name>/``."""

    def __init__(self, config: TrainConfig, name: str) -> None:
        self.name = name
        self.checkpoints = Path(config.paths.checkpoints) / name
        self.logs = Path(config.paths.logs) / name
        self.tensorboard = Path(config.paths.tensorboard) / name
        for folder in (self.checkpoints, self.logs.parent, self.tensorboard):
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"output path {folder} exists and is not a folder")

    def publish_weights(self, weights_dir: Path) -> list[Path]:
        """Copy ``best.pt``/``last.pt`` from an ultralytics run into the checkpoints folder."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        copied = []
        for name in ("last.pt", "best.pt"):
            source = weights_dir / name
            if source.is_file():  # copied under a temporary name, then renamed: never a half-copied .pt
                with atomic_path(self.checkpoints / name) as tmp:
                    shutil.copy2(source, tmp)
                copied.append(self.checkpoints / name)
        return copied


class RunLock:
    """An exclusive lock on a run's ``logs/<name>/`` folder, held until the process ends (or
    ``release``): a second bienbao process that would write the same run is refused."""

    FILE = ".bienbao-run.lock"

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.FILE
        self._handle = self.path.open("a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; the fresh-name rule still holds
            return
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "?"
            self._handle.close()
            raise ConfigError(
                f"run folder {folder} is in use by another bienbao process (pid {holder}): wait for it, "
                "or give this run another --name"
            ) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(str(os.getpid()))
        self._handle.flush()

    def release(self) -> None:
        self._handle.close()


def _taken(config: TrainConfig, name: str) -> bool:
    return (Path(config.paths.logs) / name).exists() or (Path(config.paths.checkpoints) / name).exists()


def claim_run(config: TrainConfig, name: str, exist_ok: bool = False) -> tuple[str, RunLock]:
    """A run name nobody has used and its lock: ``name`` if free, else ``name2``, ``name3``...
    (said on the log), so a rerun or a second run started at once never overwrites an earlier
    run's checkpoints or interleaves its CSV rows. ``exist_ok``: ``name`` itself, reused, unless
    another process holds it."""
    if exist_ok:
        return name, RunLock(Path(config.paths.logs) / name)
    for number in range(1, 10000):
        candidate = name if number == 1 else f"{name}{number}"
        if _taken(config, candidate):
            continue
        try:  # mkdir is the atomic claim: of two runs started at once, one gets each name
            (Path(config.paths.logs) / candidate).mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        if candidate != name:
            log.warning(
                "run name %r is taken (%s): this run is %r (--exist-ok reuses the name and overwrites)",
                name,
                Path(config.paths.logs) / name,
                candidate,
            )
        return candidate, RunLock(Path(config.paths.logs) / candidate)
    raise ConfigError(f"run names {name} to {name}9999 are all taken: give another --name")


def lock_run(last: str | Path) -> RunLock:
    """The lock of the run that ``logs/<name>/weights/last.pt`` belongs to (for ``--resume``)."""
    return RunLock(Path(last).parent.parent)


def _loadable(path: Path) -> int | None:
    """The epoch saved in a checkpoint that loads, else None (0 bytes, cut short, not a checkpoint)."""
    import torch

    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # EOFError, UnpicklingError, RuntimeError ("failed finding central directory")...
        return None
    return int(checkpoint.get("epoch", -1)) if isinstance(checkpoint, dict) else None


def resumable_last(last: str | Path, config: TrainConfig) -> Path:
    """``last`` if it loads; else, when a kill cut ultralytics' rewrite of it short, the intact copy
    that every save publishes to ``models/checkpoints/<run>/last.pt``, copied back over it (said
    on the log). ``ConfigError`` when neither loads."""
    last = Path(last)
    if _loadable(last) is not None:
        return last
    run = last.parent.parent.name
    copy = Path(config.paths.checkpoints) / run / "last.pt"
    epoch = _loadable(copy)
    if epoch is None:
        raise ConfigError(
            f"cannot resume: {last} is damaged ({last.stat().st_size if last.is_file() else 'no'} bytes) "
            f"and {copy} has no intact copy either"
        )
    log.warning(
        "%s is damaged (%d bytes: killed while it was being written?); resuming from the intact copy %s (epoch %d)",
        last,
        last.stat().st_size if last.is_file() else 0,
        copy,
        epoch + 1,
    )
    with atomic_path(last) as tmp:
        shutil.copy2(copy, tmp)
    return last


def checked_dataset(data: str | Path, fliplr: float) -> list[str]:
    """Check the dataset (stop on errors, report warnings once) and the flip setting; class names."""
    report = check_dataset(data)
    report.raise_for_errors()  # the message holds the whole report
    print(report.format())
    names = dataset_names(data)
    flipped = [c for pair in MIRROR_PAIRS for c in pair if c in names] + sorted(MIRROR_SENSITIVE & set(names))
    if fliplr > 0 and flipped:
        log.warning(
            "fliplr=%s mirrors left/right signs without swapping their labels (%s): set fliplr: 0.0",
            fliplr,
            ", ".join(flipped[:4]),
        )
    return names


def resolve_model_source(model: str) -> str:
    """A checkpoint path that exists, or a model YAML (training from scratch, said loudly)."""
    path = Path(model)
    if path.suffix in (".yaml", ".yml"):
        log.warning("training %s from scratch (no pretrained weights): expect poor accuracy on a short run", model)
        return model
    if not path.is_file():
        raise ConfigError(
            f"pretrained checkpoint {model} not found, and nothing is downloaded here. Put the file there, pass "
            "--model PATH (any ultralytics detection checkpoint), or --model yolov8n.yaml to train from scratch"
        )
    return str(path)


def ultralytics_overrides(config: TrainConfig, layout: RunLayout, extra: Mapping[str, Any]) -> dict[str, Any]:
    args = {
        "data": str(config.data),
        "imgsz": config.imgsz,
        "epochs": config.epochs,
        "batch": config.batch,
        "workers": config.workers,
        "seed": config.seed,
        "project": str(layout.logs.parent.resolve()),
        "name": layout.name,
        "exist_ok": True,
        "plots": False,
        "val": True,
    }
    if config.device is not None:
        args["device"] = config.device
    args.update(config.ultralytics)
    args.update(extra)
    return args


def append_csv(path: Path, row: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:  # direct write: one row appended per call
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)

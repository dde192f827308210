"""Where config files are found, and what their relative paths mean.

- A command's default config is ``./configs/<kind>.yaml`` when that file exists, else the copy
  that ships inside this package (``bienbao/trainer/configs/``). ``bienbao init DIR`` writes
  editable copies of the packaged ones into ``DIR/configs/``.
- Every relative path *in* a config file resolves against that file's folder. A packaged default
  reads as if it lived in ``./configs/``: its ``../models/checkpoints`` is ``./models/checkpoints``,
  and a file it names (``quantization.yaml``) is taken from ``./configs/`` when there is one there,
  else from the package.
- Paths given on the command line are relative to the working folder, as usual.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bienbao.core.errors import ConfigError

__all__ = [
    "CONFIG_KINDS",
    "PACKAGED",
    "ConfigFile",
    "init_configs",
    "locate_config",
    "locate_experiment",
    "packaged_experiments",
]

PACKAGED = Path(__file__).parent / "configs"
#: the config files a command reads, by kind (``bienbao init`` writes each of them)
CONFIG_KINDS = ("base", "qat", "quantization", "export")
LOCAL = Path("configs")


@dataclass(frozen=True)
class ConfigFile:
    """A config file to read and the folder its relative paths resolve against."""

    path: Path
    base: Path
    packaged: bool = False

    @classmethod
    def of(cls, path: str | Path) -> ConfigFile:
        """``path`` as a config file: a packaged one (inside this package) resolves as if in ./configs/."""
        path = Path(path)
        absolute = path.absolute()
        if absolute.is_relative_to(PACKAGED):
            return cls(absolute, Path.cwd() / LOCAL / absolute.parent.relative_to(PACKAGED), packaged=True)
        return cls(path, absolute.parent)

    def resolve(self, value: str) -> str:
        """One relative path from this file, made absolute (absolute paths are kept)."""
        path = Path(value).expanduser()
        if path.is_absolute():
            return str(path)
        candidate = self.base / path
        if self.packaged and not candidate.exists():
            inside = self.path.parent / path
            if inside.exists():  # a sibling config file that only the package has
                return str(inside.resolve())
        return str(Path(_normalize(candidate)))

    def resolve_fields(
        self, data: Mapping[str, Any], fields: Iterable[str], keep_bare: Iterable[str] = ()
    ) -> dict[str, Any]:
        """``data`` with the (dotted) ``fields`` resolved. A ``keep_bare`` field whose value is a
        bare file name that does not exist beside the config stays as written (``yolov8n.pt`` is
        also a model name ultralytics knows)."""
        result = _copy(data)
        keep = set(keep_bare)
        for dotted in fields:
            *parents, leaf = dotted.split(".")
            target = result
            for parent in parents:
                target = target.get(parent)
                if not isinstance(target, dict):
                    break
            else:
                value = target.get(leaf)
                if isinstance(value, str) and value:
                    resolved = self.resolve(value)
                    bare = dotted in keep and Path(value).name == value and not Path(resolved).exists()
                    target[leaf] = value if bare else resolved
        return result

    def describe(self) -> str:
        return f"{self.path} (packaged default)" if self.packaged else str(self.path)


def _normalize(path: Path) -> str:
    import os

    return os.path.normpath(str(path))  # drop the "configs/.." without following links


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def locate_config(kind: str, path: str | Path | None = None) -> ConfigFile:
    """The config of ``kind`` to read: ``path`` when given (it must exist), else ./configs/, else
    the packaged default."""
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown config kind {kind!r}; one of {', '.join(CONFIG_KINDS)}")
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file not found: {path} (looked for {Path(path).absolute()})")
        return ConfigFile.of(path)
    local = LOCAL / f"{kind}.yaml"
    if local.is_file():
        return ConfigFile.of(local)
    return ConfigFile.of(PACKAGED / f"{kind}.yaml")


def packaged_experiments() -> list[str]:
    return sorted(p.stem for p in (PACKAGED / "experiments").glob("*.yaml"))


def locate_experiment(name_or_path: str) -> ConfigFile:
    """An experiment file by path, or by name (``exp4_float_head``) from ./configs/experiments/
    or the package."""
    path = Path(name_or_path)
    if path.is_file():
        return ConfigFile.of(path)
    stem = path.name.removesuffix(".yaml")
    for folder in (LOCAL / "experiments", PACKAGED / "experiments"):
        candidate = folder / f"{stem}.yaml"
        if candidate.is_file():
            return ConfigFile.of(candidate)
    raise ConfigError(
        f"experiment not found: {name_or_path} (looked for {path.absolute()}, "
        f"{(LOCAL / 'experiments' / f'{stem}.yaml').absolute()} and the packaged ones: "
        f"{', '.join(packaged_experiments())})"
    )


def init_configs(folder: str | Path, force: bool = False) -> list[Path]:
    """Copy the packaged configs (and experiments) into ``folder/configs/``; returns what was
    written. Existing files are kept unless ``force``: an edited config is never lost."""
    target = Path(folder) / LOCAL
    sources = sorted(p for p in PACKAGED.rglob("*.yaml"))
    existing = [target / p.relative_to(PACKAGED) for p in sources if (target / p.relative_to(PACKAGED)).exists()]
    if existing and not force:
        raise ConfigError(
            f"{len(existing)} config file(s) already exist, e.g. {existing[0]}: nothing written "
            "(--force overwrites them)"
        )
    written = []
    for source in sources:
        destination = target / source.relative_to(PACKAGED)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".partial")
        shutil.copyfile(source, partial)
        partial.replace(destination)
        written.append(destination)
    return written

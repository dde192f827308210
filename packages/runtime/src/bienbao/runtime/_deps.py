"""Optional dependencies: import them by name, or fail saying what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingDependencyError", "require"]


class MissingDependencyError(ImportError):
    """An optional dependency is missing; the message names the pip extra (or system package)."""


def require(module: str, extra: str | None, hint: str = "") -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming ``bienbao-runtime[extra]``
    (``extra=None``: nothing to pip install, the ``hint`` says where it comes from)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".", maxsplit=1)[0] and exc.name != module:
            raise  # the module exists but one of *its* imports is missing: show that, unchanged
        if extra is None:
            raise MissingDependencyError(f"{module} is not installed: {hint}") from exc
        message = f"{module} is not installed: pip install 'bienbao-runtime[{extra}]'"
        raise MissingDependencyError(message + (f" ({hint})" if hint else "")) from exc

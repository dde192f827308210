"""Small helpers for addressing submodules by qualified name."""

from __future__ import annotations

from torch import nn

__all__ = ["get_submodule", "set_submodule"]


def get_submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"the model has no submodule named {name!r}") from None


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = get_submodule(model, parent_name) if parent_name else model
    if not hasattr(parent, child):
        raise ValueError(f"the model has no submodule named {name!r}")
    setattr(parent, child, module)

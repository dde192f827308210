"""YAML from users' files (configs, dataset YAMLs, ``--set`` values), parsed without aliases.

``yaml.safe_load`` expands aliases (``*name``): nine levels of nine aliases (a "billion laughs"
file of a few hundred bytes) become 10^9 values, minutes of CPU and, printed in an error message,
gigabytes of stderr. bienbao's files need no aliases, so an alias is refused where it stands.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["AliasRefusedError", "parse_yaml"]


class AliasRefusedError(yaml.YAMLError):
    """A YAML alias in a user's file (every ``except yaml.YAMLError`` already reports it)."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise AliasRefusedError(
                f"line {event.start_mark.line + 1}: the alias *{event.anchor} is not accepted here "
                "(aliases can expand a small file into billions of values): write the value out"
            )
        return super().compose_node(parent, index)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` that refuses aliases (``AliasRefusedError``, a ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_NoAliasLoader)

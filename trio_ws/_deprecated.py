"""Deprecated aliases: old public names that keep working for one release, with a warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["alias_getattr"]


def alias_getattr(module: str, aliases: Mapping[str, tuple[str, object]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``aliases`` (old name -> (new name, object)).

    Reading an old name warns with :exc:`DeprecationWarning` naming the new
    one; any other unknown name raises :exc:`AttributeError` as usual.
    """

    def __getattr__(name: str) -> Any:
        found = aliases.get(name)
        if found is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_name, value = found
        warnings.warn(
            f"{module}.{name} is deprecated; use {new_name} (the same object)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__

"""Route patterns with path parameters: ``/chat/{room}``, ``/user/{id:int}``, ``/files/{rest:path}``.

A pattern is compiled once into a regular expression; converters turn the
captured text into values. Matching is exact on the whole path (no trailing
slash magic): ``/chat/{room}`` matches ``/chat/lobby`` but not ``/chat/lobby/``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Converter", "CONVERTERS", "RoutePattern", "Router", "RouteMatch"]


@dataclass(frozen=True)
class Converter:
    """How a path parameter is matched (a regex) and turned into a value."""

    regex: str
    convert: Callable[[str], Any]


CONVERTERS: dict[str, Converter] = {
    "str": Converter(r"[^/]+", str),
    "int": Converter(r"-?[0-9]+", int),
    "float": Converter(r"-?[0-9]+(?:\.[0-9]+)?", float),
    "path": Converter(r".*", str),
    "uuid": Converter(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", uuid.UUID),
}

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


class RoutePattern:
    """A compiled route pattern.

    Args:
        pattern: a path starting with ``/``, with ``{name}`` or
            ``{name:converter}`` parameters (converters: str, int, float, path, uuid).

    Raises:
        ValueError: for a pattern that does not start with ``/``, an unknown
            converter, or a parameter used twice.
    """

    def __init__(self, pattern: str) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        self.pattern = pattern
        self.converters: dict[str, Converter] = {}
        regex = ["^"]
        position = 0
        for match in _PARAM.finditer(pattern):
            regex.append(re.escape(pattern[position : match.start()]))
            name, kind = match.group(1), match.group(2) or "str"
            if kind not in CONVERTERS:
                raise ValueError(f"unknown converter {kind!r} in {pattern!r} (known: {', '.join(CONVERTERS)})")
            if name in self.converters:
                raise ValueError(f"parameter {name!r} appears twice in {pattern!r}")
            self.converters[name] = CONVERTERS[kind]
            regex.append(f"(?P<{name}>{CONVERTERS[kind].regex})")
            position = match.end()
        regex.append(re.escape(pattern[position:]))
        regex.append("$")
        self._regex = re.compile("".join(regex))

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted parameters when ``path`` matches, else None."""
        found = self._regex.match(path)
        if found is None:
            return None
        params: dict[str, Any] = {}
        for name, text in found.groupdict().items():
            try:
                params[name] = self.converters[name].convert(text)
            except ValueError:
                return None
        return params

    def __repr__(self) -> str:
        return f"RoutePattern({self.pattern!r})"


T = TypeVar("T")


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    """A matched route: its target and the path parameters."""

    target: T
    params: dict[str, Any]


class Router(Generic[T]):
    """An ordered list of patterns; the first that matches wins."""

    def __init__(self) -> None:
        self._routes: list[tuple[RoutePattern, T]] = []

    def add(self, pattern: str, target: T) -> None:
        """Add a route.

        Raises:
            ValueError: for an invalid pattern or one already registered.
        """
        compiled = RoutePattern(pattern)
        if any(existing.pattern == pattern for existing, _ in self._routes):
            raise ValueError(f"route {pattern!r} is already registered")
        self._routes.append((compiled, target))

    def match(self, path: str) -> RouteMatch[T] | None:
        """The first route matching ``path`` (without its query string)."""
        for pattern, target in self._routes:
            params = pattern.match(path)
            if params is not None:
                return RouteMatch(target, params)
        return None

    def __len__(self) -> int:
        return len(self._routes)

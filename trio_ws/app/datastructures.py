"""What a handler sees of the request: URL, query, headers, cookies, client, state."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, NamedTuple

__all__ = ["MultiDict", "Headers", "QueryParams", "URL", "Client", "State", "parse_cookies"]


class MultiDict(Mapping[str, str]):
    """An immutable mapping that keeps every value of repeated keys, in order.

    ``md[key]`` and ``md.get(key)`` give the *last* value; :meth:`getlist`
    gives all of them.
    """

    _normalise_keys = False

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = [(self._key(key), value) for key, value in items]
        self._last = {key: value for key, value in self._items}

    def _key(self, key: str) -> str:
        return key.lower() if self._normalise_keys else key

    def __getitem__(self, key: str) -> str:
        return self._last[self._key(key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) in self._last

    def __iter__(self) -> Iterator[str]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key``, in order (empty if absent)."""
        wanted = self._key(key)
        return [value for name, value in self._items if name == wanted]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (key, value) pair, repeats included."""
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return sorted(self._items) == sorted(other._items)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class QueryParams(MultiDict):
    """The query string's parameters (an immutable multidict)."""

    @classmethod
    def from_string(cls, query: str) -> QueryParams:
        """Parse a query string (``a=1&b=2&a=3``); blank values are kept."""
        return cls(urllib.parse.parse_qsl(query, keep_blank_values=True))


class Headers(MultiDict):
    """Request headers: case-insensitive, keys come back lower-case."""

    _normalise_keys = True

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from ``(name, value)`` bytes pairs (decoded as latin-1)."""
        return cls((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


@dataclass(frozen=True)
class URL:
    """The URL of a WebSocket request."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str

    def __str__(self) -> str:
        netloc = self.host if self.port is None else f"{self.host}:{self.port}"
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{netloc}{self.path}{query}"


class Client(NamedTuple):
    """The peer's address (``port`` is None on a Unix socket); unpacks as ``host, port = ws.client``."""

    host: str
    port: int | None


class State:
    """A per-connection attribute store: ``ws.state.user = ...``.

    Reading an attribute that was never set raises AttributeError with its name.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._values[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._values[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __repr__(self) -> str:
        return f"State({self._values!r})"


def parse_cookies(headers: Headers) -> dict[str, str]:
    """The request's cookies; a malformed ``Cookie`` pair is skipped, not fatal."""
    cookies: dict[str, str] = {}
    for header in headers.getlist("cookie"):
        for part in header.split(";"):
            if "=" not in part:
                continue
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(part.strip())
            except CookieError:
                continue
            for key, morsel in jar.items():
                cookies[key] = morsel.value
    return cookies

"""Event handlers: a registered function, its declared data type, how its failures are treated."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import EventConnection

__all__ = ["ErrorHook", "EventError", "EventHandler", "HandlerFunction"]

HandlerFunction = Callable[..., Awaitable[Any]]
ErrorHook = Callable[["EventConnection", str, BaseException], Awaitable[None]]
_SIMPLE_TYPES = (dict, list, str, int, float, bool)
_REDACTED = "<redacted>"


class EventError(Exception):
    """Raise it in a handler to answer with a chosen error type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class EventHandler:
    """A registered event handler and how to treat its failures.

    Attributes:
        function: ``async def handler(conn, data)``; its return value answers.
        expected_exceptions: exceptions that are part of the handler's
            contract: answered with their type and message, logged at INFO.
        sensitive_arguments: keys of a dict argument to redact in logs.
        data_type: the declared type of ``data`` (from its annotation) when it
            is a plain JSON type; other types are refused with ``TypeError``.
    """

    function: HandlerFunction
    expected_exceptions: tuple[type[BaseException], ...] = ()
    sensitive_arguments: tuple[str, ...] = ()
    data_type: type | None = None

    @classmethod
    def wrap(
        cls,
        function: HandlerFunction,
        expected_exceptions: Iterable[type[BaseException]] = (),
        sensitive_arguments: Iterable[str] = (),
    ) -> EventHandler:
        """Build a handler, reading the data parameter's annotation."""
        return cls(function, tuple(expected_exceptions), tuple(sensitive_arguments), _data_type(function))

    def for_event(self, event: str) -> EventHandler:
        """This handler as the handler of ``event``: ``function(conn, event, data)`` called as ``(conn, data)``."""

        async def bound(conn: EventConnection, data: Any) -> Any:
            return await self.function(conn, event, data)

        return EventHandler(bound, self.expected_exceptions, self.sensitive_arguments)

    def accepts(self, data: Any) -> bool:
        """Whether ``data`` is of the declared type (JSON-aware: an integer is a float, a boolean no number)."""
        expected = self.data_type
        if expected is None:
            return True
        if expected is float:
            return isinstance(data, (int, float)) and not isinstance(data, bool)
        if expected is int:
            return isinstance(data, int) and not isinstance(data, bool)
        return isinstance(data, expected)

    def shown(self, data: Any) -> Any:
        """``data`` as it may be logged: the sensitive arguments redacted."""
        sensitive = self.sensitive_arguments
        if not sensitive:
            return data
        if isinstance(data, dict):
            return {key: (_REDACTED if key in sensitive else value) for key, value in data.items()}
        return _REDACTED


def _data_type(function: HandlerFunction) -> type | None:
    try:
        parameters = list(inspect.signature(function, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return None
    if len(parameters) < 2:
        return None
    annotation = parameters[1].annotation
    return annotation if annotation in _SIMPLE_TYPES else None

"""Namespaces: class-based groups of event handlers, and the hub rooms of each namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..hub import INTERNAL_ROOM_PREFIX
from .envelope import DEFAULT_NAMESPACE
from .handlers import EventError, EventHandler

if TYPE_CHECKING:
    from .session import EventConnection

__all__ = ["Namespace", "hub_room", "is_connection_id", "namespace_room", "split_hub_room"]


class Namespace:
    """A group of event handlers: each ``on_<event>`` method handles ``<event>``.

    One instance serves every connection; keep per-connection data in
    ``conn.session``. Register it with :meth:`App.add_namespace`.

    Attributes:
        namespace: the namespace's name (default ``"/"``).
        allowed_events: the events a new connection may send here; None
            (default) allows all. Change a connection's set at run time with
            ``conn.acl(namespace)``.
    """

    namespace: ClassVar[str] = DEFAULT_NAMESPACE
    allowed_events: ClassVar[Iterable[str] | None] = None
    expected_exceptions: ClassVar[Mapping[str, Iterable[type[BaseException]]]] = {}
    sensitive_arguments: ClassVar[Mapping[str, Iterable[str]]] = {}

    async def on_connect(self, conn: EventConnection, data: Any) -> bool | None:
        """Called when a connection joins the namespace; return False (or raise
        :class:`EventError`) to refuse it."""
        return None

    async def on_disconnect(self, conn: EventConnection) -> None:
        """Called when a connection leaves the namespace or closes."""

    async def on_error(self, conn: EventConnection, event: str, error: BaseException) -> None:
        """Called when a handler (or a job) of this namespace raises an unexpected exception."""

    async def process_event(self, conn: EventConnection, event: str, data: Any) -> Any:
        """Handle one event of this namespace; override it to route events your own way.

        As long as it is not overridden, the app routes each event to its
        handler (decorated, ``on_<event>``, or the catch-all) and this method
        is not called. An override receives every event the connection's ACL
        allows; its return value answers the event, :class:`EventError`
        answers with an error. This default calls ``on_<event>`` (so an
        override can fall back to ``await super().process_event(...)``).

        Raises:
            EventError: ``UnknownEvent`` when there is no ``on_<event>`` method.
        """
        handler = self.handlers().get(event)
        if handler is None:
            raise EventError("UnknownEvent", f"no handler for {event!r} in {self.namespace!r}")
        return await handler.function(conn, data)

    def _routes_events(self) -> bool:
        """Whether this class overrides :meth:`process_event`."""
        return type(self).process_event is not Namespace.process_event

    def _dispatcher(self, event: str) -> EventHandler:
        """:meth:`process_event` as the handler of ``event``."""

        async def dispatch(conn: EventConnection, data: Any) -> Any:
            return await self.process_event(conn, event, data)

        return EventHandler(
            dispatch,
            tuple(self.expected_exceptions.get(event, ())),
            tuple(self.sensitive_arguments.get(event, ())),
        )

    def handlers(self) -> dict[str, EventHandler]:
        """The ``on_<event>`` methods, by event name."""
        found: dict[str, EventHandler] = {}
        for name in dir(self):
            if not name.startswith("on_") or name in ("on_connect", "on_disconnect", "on_error"):
                continue
            method = getattr(self, name)
            if callable(method):
                event = name[3:]
                found[event] = EventHandler.wrap(
                    method,
                    self.expected_exceptions.get(event, ()),
                    self.sensitive_arguments.get(event, ()),
                )
        return found


#: Separates a namespace from a room name in hub room names (ASCII unit
#: separator: it cannot collide with printable room names).
_SEPARATOR = "\x1f"


def hub_room(namespace: str, room: str) -> str:
    """The hub room of ``room`` in ``namespace`` (the default namespace's rooms keep their names)."""
    return room if namespace == DEFAULT_NAMESPACE else f"{namespace}{_SEPARATOR}{room}"


def split_hub_room(room: str) -> tuple[str, str]:
    """The inverse of :func:`hub_room`: ``(namespace, room)``."""
    space, separator, name = room.rpartition(_SEPARATOR)
    return (space, name) if separator else (DEFAULT_NAMESPACE, room)


def namespace_room(namespace: str) -> str:
    """The hub room every connection of ``namespace`` is in (for emits to all).

    Its name starts with the hub's internal-room prefix, so the hub does not
    list it among a member's rooms.
    """
    return f"{INTERNAL_ROOM_PREFIX}namespace{_SEPARATOR}{namespace}"


def is_connection_id(value: str) -> bool:
    """Whether ``value`` has the form of a connection id (32 lowercase hexadecimal digits)."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)

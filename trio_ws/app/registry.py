"""The registry of an app's event handlers, namespaces and error hooks.

An :class:`~trio_ws.app.App` owns one :class:`HandlerRegistry` and fills it
through its decorators; every event session of the app receives it and asks
it which handler runs an event, whether a namespace exists, and runs the
namespace's connect, disconnect and error hooks. Registration does no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .envelope import DEFAULT_NAMESPACE
from .handlers import ErrorHook, EventHandler, HandlerFunction
from .namespaces import Namespace

if TYPE_CHECKING:
    from .session import EventConnection

__all__ = ["CATCH_ALL", "HandlerRegistry"]

logger = logging.getLogger("trio_ws.app")

#: The event name of catch-all handlers: ``@app.on("*")``.
CATCH_ALL = "*"


class HandlerRegistry:
    """Event handlers, namespaces, connect/disconnect handlers and error hooks, by namespace."""

    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, EventHandler]] = {}
        self._catch_all: dict[str, EventHandler] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._namespace_handlers: dict[str, dict[str, EventHandler]] = {}
        self._connect_handlers: dict[str, HandlerFunction] = {}
        self._disconnect_handlers: dict[str, HandlerFunction] = {}
        self._error_hooks: dict[str, ErrorHook] = {}
        self._default_error_hook: ErrorHook | None = None

    # -- registration ------------------------------------------------------------
    def add_handler(
        self,
        namespace: str,
        event: str,
        function: HandlerFunction,
        expected_exceptions: Iterable[type[BaseException]] = (),
        sensitive_arguments: Iterable[str] = (),
    ) -> None:
        """Register ``function`` for ``event`` (``connect``, ``disconnect`` and ``*`` included)."""
        if event == "connect":
            self._connect_handlers[namespace] = function
        elif event == "disconnect":
            self._disconnect_handlers[namespace] = function
        elif event == CATCH_ALL:
            self._catch_all[namespace] = EventHandler(function, tuple(expected_exceptions), tuple(sensitive_arguments))
        else:
            self._handlers.setdefault(namespace, {})[event] = EventHandler.wrap(
                function, expected_exceptions, sensitive_arguments
            )

    def add_namespace(self, instance: Namespace) -> None:
        """Register a :class:`Namespace` instance.

        Raises:
            ValueError: when a namespace of that name is already registered.
        """
        if instance.namespace in self._namespaces:
            raise ValueError(f"namespace {instance.namespace!r} is already registered")
        self._namespaces[instance.namespace] = instance
        # Read the on_<event> methods once: dispatch looks them up per event.
        self._namespace_handlers[instance.namespace] = instance.handlers()

    def set_error_hook(self, namespace: str | None, hook: ErrorHook) -> None:
        """Register the error hook of ``namespace`` (None: of namespaces without their own)."""
        if namespace is None:
            self._default_error_hook = hook
        else:
            self._error_hooks[namespace] = hook

    # -- lookups -----------------------------------------------------------------
    def handler(self, namespace: str, event: str) -> EventHandler | None:
        """The handler of ``event``: the namespace's own dispatch, else by name, else the catch-all."""
        instance = self._namespaces.get(namespace)
        if instance is not None and instance._routes_events():
            return instance._dispatcher(event)
        handler = self._handlers.get(namespace, {}).get(event)
        if handler is None:
            handler = self._namespace_handlers.get(namespace, {}).get(event)
        if handler is None:
            catch_all = self._catch_all.get(namespace)
            if catch_all is not None:
                handler = catch_all.for_event(event)
        return handler

    def has_namespace(self, namespace: str) -> bool:
        """Whether a connection may join ``namespace`` (the default one always exists)."""
        return (
            namespace == DEFAULT_NAMESPACE
            or namespace in self._namespaces
            or namespace in self._handlers
            or namespace in self._connect_handlers
            or namespace in self._catch_all
        )

    def initial_acl(self, namespace: str) -> Iterable[str] | None:
        """The events a new connection may send in ``namespace`` (None: all)."""
        instance = self._namespaces.get(namespace)
        return None if instance is None else instance.allowed_events

    # -- hooks -------------------------------------------------------------------
    async def on_connect(self, namespace: str, conn: EventConnection, data: Any) -> bool | None:
        """Run the connect handler of ``namespace``; False refuses the connection.

        Raises:
            Exception: whatever the handler raises (``EventError`` refuses).
        """
        handler = self._connect_handlers.get(namespace)
        if handler is not None:
            result: bool | None = await handler(conn, data)
            return result
        instance = self._namespaces.get(namespace)
        if instance is not None:
            return await instance.on_connect(conn, data)
        return None

    async def on_disconnect(self, namespace: str, conn: EventConnection) -> None:
        """Run the disconnect handlers of ``namespace`` (decorated, then the Namespace's).

        Raises:
            Exception: whatever a handler raises.
        """
        handler = self._disconnect_handlers.get(namespace)
        if handler is not None:
            await handler(conn)
        instance = self._namespaces.get(namespace)
        if instance is not None:
            await instance.on_disconnect(conn)

    async def run_error_hooks(self, conn: EventConnection, namespace: str, event: str, error: Exception) -> None:
        """Hand ``error`` to the error hook of ``namespace``; a failing hook is logged, never raised."""
        hook = self._error_hooks.get(namespace)
        instance = self._namespaces.get(namespace)
        try:
            if hook is not None:
                await hook(conn, event, error)
            elif instance is not None and type(instance).on_error is not Namespace.on_error:
                await instance.on_error(conn, event, error)
            elif self._default_error_hook is not None:
                await self._default_error_hook(conn, event, error)
        except Exception:
            logger.exception("error hook of %r failed", namespace)

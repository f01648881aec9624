"""Mounting the Socket.IO endpoint on an :class:`~trio_ws.app.App`: its settings, origins and recovery.

Part of :class:`~trio_ws.app.App` (a mixin of it):
:meth:`~trio_ws.app.App.enable_socketio` checks its options, builds the
:class:`~trio_ws.app.socketio.SocketIOSettings` and the store of
connection-state recovery, then has the app add the route. Serving the
clients that connect there is :mod:`trio_ws.app.socketio`'s part.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable

from ..hub import HistoryPolicy, Hub
from ..socketio.packets import MAX_ATTACHMENTS
from ..socketio.server import CONNECT_TIMEOUT
from ..socketio.session import EngineConfig
from .socketio import SocketIOSettings
from .socketio_recovery import RecoveryLog, default_policy
from .socketio_recovery_redis import StreamedRecovery

__all__ = ["SocketIOMount"]


class SocketIOMount:
    """The Socket.IO half of :class:`~trio_ws.app.App` (not used on its own)."""

    hub: Hub
    socketio: SocketIOSettings | None
    _recovery: RecoveryLog | StreamedRecovery | None

    @abstractmethod
    def _mount_socketio(self, path: str) -> None:
        """Add the route that serves the Engine.IO endpoint at ``path``."""

    def enable_socketio(
        self,
        path: str = "/socket.io/",
        *,
        config: EngineConfig | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_attachments: int = MAX_ATTACHMENTS,
        origins: Iterable[str | None] | None = None,
        cors_allowed_origins: Iterable[str | None] | str | None = None,
        max_disconnection_duration: float | None = None,
        recovery_history: HistoryPolicy | None = None,
    ) -> None:
        """Serve unmodified Socket.IO clients at ``path`` with this app's handlers.

        The same ``@app.on`` handlers, namespaces, ACLs, rooms, calls and
        emits serve Socket.IO clients (Engine.IO v4 over long-polling and
        WebSocket, Socket.IO v5) beside the event-envelope clients; a room may hold both,
        and each member receives an emit in its own encoding. Connect
        handlers receive the client's ``auth`` payload as their data.

        Args:
            path: the Engine.IO endpoint (the clients' default ``/socket.io/``).
            config: Engine.IO settings (ping interval and timeout, ``max_payload``).
            connect_timeout: seconds a client has to connect to a namespace (45).
            max_attachments: the most binary attachments one packet may announce (256).
            origins: allowed Origin values, as for :meth:`add_route`, of
                every request to ``path`` (long-polling requests, CORS
                preflights, WebSocket handshakes); also the CORS allow-list
                of the long-polling answers. None (default) allows every
                origin, echoed without credentials.
            cors_allowed_origins: Flask-SocketIO's name for ``origins``, with
                the same semantics (default: ``origins``); ``"*"`` allows
                every origin. Give one of the two, or both with the same value.
            max_disconnection_duration: turns on connection-state recovery
                (Socket.IO's ``connectionStateRecovery``): a client whose
                connection drops and that comes back within this many
                seconds gets its sid, rooms and ``session`` back and the
                events it missed (see :mod:`trio_ws.app.socketio_recovery`).
                None (default): off. With a Redis backend the client may
                come back to any process (see
                :mod:`trio_ws.app.socketio_recovery_redis`).
            recovery_history: the bounds of the log of events kept for
                recovery, per namespace with a backend (default: 10,000
                events, 8 MiB, and no older than ``max_disconnection_duration``).

        Raises:
            ValueError: for an invalid setting, when Socket.IO is already
                enabled, ``origins`` and ``cors_allowed_origins`` that differ,
                or recovery with a backend that cannot keep it (one without
                streams and parking: RedisBackend has both).
            TypeError: ``cors_allowed_origins`` is a string other than ``"*"``.
        """
        if self.socketio is not None:
            raise ValueError(f"Socket.IO is already served at {self.socketio.path!r}")
        allowed = _socketio_origins(origins, cors_allowed_origins)
        settings = SocketIOSettings(path, config or EngineConfig(), connect_timeout, max_attachments, allowed)
        if max_disconnection_duration is not None:
            if not max_disconnection_duration > 0:
                raise ValueError(f"max_disconnection_duration must be > 0, not {max_disconnection_duration!r}")
            policy = recovery_history or default_policy(max_disconnection_duration)
            if self.hub.backend is not None:
                self._recovery = StreamedRecovery(self.hub, policy, max_disconnection_duration)
            else:
                self._recovery = RecoveryLog(policy, max_disconnection_duration)
        self._mount_socketio(path)
        self.socketio = settings


def _socketio_origins(
    origins: Iterable[str | None] | None, cors_allowed_origins: Iterable[str | None] | str | None
) -> frozenset[str | None] | None:
    """The one allow-list of the Socket.IO endpoint, from ``origins`` and/or Flask-SocketIO's spelling."""
    own = None if origins is None else frozenset(origins)
    if cors_allowed_origins is None:
        return own
    if isinstance(cors_allowed_origins, str):
        if cors_allowed_origins != "*":
            raise TypeError(
                f"cors_allowed_origins must be a list of origins or '*', not the string {cors_allowed_origins!r}"
            )
        cors = None
    else:
        cors = frozenset(cors_allowed_origins)
    if origins is not None and own != cors:
        raise ValueError(
            f"origins={sorted(own or (), key=str)} and cors_allowed_origins={cors_allowed_origins!r} differ: give one"
        )
    return cors

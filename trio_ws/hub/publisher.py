"""What a hub, or a publish-only client, tells other processes: one publisher for both.

:class:`Publisher` builds each envelope (:mod:`trio_ws.hub.envelopes`) with
this process's id as its origin and hands it to the backend on the route
that reaches the processes concerned: a room's subscribers, every process, or
the process of one member. :class:`~trio_ws.hub.Hub` and
:class:`~trio_ws.hub.HubClient` both publish through it, so the two cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from .backend import HubBackend
from .envelopes import (
    all_envelope,
    close_room_envelope,
    disconnect_envelope,
    member_envelope,
    presence_envelope,
    room_envelope,
    stream_envelope,
)
from .history import HistoryPolicy
from .positioned import PositionedJSON, PositionedVariants
from .variants import HubMessage

if TYPE_CHECKING:
    from .stream_rooms import StreamingBackend

__all__ = ["Publisher"]


class Publisher:
    """Publish the hub's envelopes through a backend.

    Every method returns what the backend's publishing call returns: True
    when the envelope was handed over, False when it could not be (it is then
    lost: delivery between processes is at most once). Each raises what the
    backend raises (the Redis backend raises nothing), is as safe to cancel
    as the backend's call, and allows concurrent calls.

    Args:
        backend: the backend to publish through.
    """

    def __init__(self, backend: HubBackend) -> None:
        self.backend = backend

    async def room(
        self,
        room: str,
        message: HubMessage,
        exclude: str | Iterable[str] | None = None,
        within: str | None = None,
    ) -> bool:
        """Deliver ``message`` to the members of ``room`` in other processes, but ``exclude``.

        With ``within``, only to those also in the room ``within``, or whose id it is.
        """
        backend = self.backend
        return await backend.publish_room(room, room_envelope(backend.process_id, room, message, exclude, within))

    async def stream(
        self,
        backend: StreamingBackend,
        room: str,
        message: HubMessage | PositionedJSON | PositionedVariants,
        exclude: str | Iterable[str] | None,
        policy: HistoryPolicy,
        within: str | None = None,
    ) -> bool:
        """Append ``message`` to ``room``'s stream (a room with history), which every process reads.

        Raises:
            TypeError: when a PositionedJSON holds something JSON cannot encode.
        """
        envelope = stream_envelope(backend.process_id, room, message, exclude, within)
        return await backend.append_stream(room, envelope, policy)

    async def all(self, message: HubMessage, exclude: str | Iterable[str] | None = None) -> bool:
        """Deliver ``message`` to every member of other processes, but ``exclude``."""
        backend = self.backend
        return await backend.publish_all(all_envelope(backend.process_id, message, exclude))

    async def member(self, member_id: str, message: HubMessage) -> bool:
        """Deliver ``message`` to ``member_id`` in its process (False when it is unknown)."""
        backend = self.backend
        return await backend.publish_to_member(member_id, member_envelope(backend.process_id, member_id, message))

    async def disconnect(self, member_id: str, code: int, reason: str) -> bool:
        """Ask the process of ``member_id`` to close its connection (False when it is unknown)."""
        backend = self.backend
        envelope = disconnect_envelope(backend.process_id, member_id, code, reason)
        return await backend.publish_to_member(member_id, envelope)

    async def close_room(self, room: str) -> bool:
        """Ask the other processes to take their members out of ``room``."""
        backend = self.backend
        return await backend.publish_room(room, close_room_envelope(backend.process_id, room))

    async def presence(self, room: str, member_id: str, event: Literal["join", "leave"]) -> bool:
        """Tell the other processes with members in ``room`` that ``member_id`` joined or left it."""
        backend = self.backend
        return await backend.publish_room(room, presence_envelope(backend.process_id, room, member_id, event))

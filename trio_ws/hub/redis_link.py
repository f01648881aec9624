"""What the halves of the Redis backend share: the link's state and the calls that use it.

:class:`RedisLink` declares, once, the attributes and methods that
:class:`~trio_ws.hub.redis_membership.RedisMembership` and
:class:`~trio_ws.hub.redis_publishing.RedisPublishing` rely on;
:class:`~trio_ws.hub.redis.RedisBackend` provides them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .redis import AnyClient, AnyPipeline

__all__ = ["RedisLink"]


class RedisLink:
    """The link to Redis as the backend's mixins see it (not used on its own)."""

    process_id: str
    _timeout: float
    _client: AnyClient | None
    _up: bool

    @abstractmethod
    def _failed(self, what: str, exc: BaseException) -> None:
        """Handle a failed Redis call (a transport failure ends the link)."""

    @abstractmethod
    def _client_factory(self) -> AnyClient:
        """A new client (not yet entered)."""

    @abstractmethod
    async def _pipeline(
        self,
        build: Callable[[AnyPipeline], list[Any]],
        *,
        transaction: bool = False,
        budget: float | None = None,
        client: AnyClient | None = None,
    ) -> list[Any]:
        """Run the commands ``build`` queues, bounded by ``command_timeout``; their results."""

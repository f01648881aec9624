"""Class-based handlers: subclass :class:`WebSocketHandler`.

The app accepts the connection in :meth:`WebSocketHandler.on_connect` (which
may reject it instead), then calls :meth:`~WebSocketHandler.on_receive` with
each message decoded per :attr:`~WebSocketHandler.encoding`, one at a time in
arrival order, and finally :meth:`~WebSocketHandler.on_disconnect` with the
close code, however the connection ended. A message that does not decode
closes the connection with 1003 (binary where text is expected, or the
reverse) or 1007 (invalid JSON), with a reason saying why — unless
:meth:`~WebSocketHandler.on_decode_error` is overridden to handle it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from .._deprecated import alias_getattr
from ..close import INTERNAL_ERROR, NORMAL_CLOSURE
from ..errors import ConnectionClosed
from .websocket import DecodeError, WebSocket, decode_message

__all__ = ["WebSocketHandler"]


class WebSocketHandler:
    """Base class of class-based handlers; one instance per connection.

    Attributes:
        encoding: how messages are decoded for :meth:`on_receive`: ``"json"``,
            ``"text"`` or ``"bytes"`` (default ``"text"``).
        websocket: the connection.
    """

    encoding: ClassVar[Literal["json", "text", "bytes"]] = "text"

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def on_connect(self) -> None:
        """Called first; accepts the connection. Override to authenticate and
        call ``await self.websocket.reject(status)`` (or ``close()``) instead."""
        await self.websocket.accept()

    async def on_receive(self, data: Any) -> None:
        """Called with each decoded message, in arrival order."""

    async def on_disconnect(self, close_code: int) -> None:
        """Called once when the connection has ended, with its close code."""

    async def on_decode_error(self, error: DecodeError) -> None:
        """Called when a message does not decode; by default closes with its code."""
        await self.websocket.close(error.close_code, str(error))

    async def run(self) -> None:
        """Drive the handler: connect, receive loop, disconnect."""
        await self.on_connect()
        if not self.websocket.accepted:
            return
        connection = self.websocket.connection
        code = NORMAL_CLOSURE
        try:
            while True:
                try:
                    message = await connection.get_message()
                except ConnectionClosed as err:
                    code = err.reason.code
                    break
                try:
                    data = decode_message(message, self.encoding)
                except DecodeError as error:
                    await self.on_decode_error(error)
                    continue
                await self.on_receive(data)
        except Exception:
            # Close with 1011 first, so that on_disconnect sees the real code.
            await connection.aclose(INTERNAL_ERROR, "internal error")
            raise
        finally:
            if connection.closed is not None:
                code = connection.closed.code
            await self.on_disconnect(code)


#: ``WebSocketEndpoint`` was this class's name, too close to the core's
#: :class:`~trio_ws.Endpoint` (an address).
__getattr__ = alias_getattr(__name__, {"WebSocketEndpoint": ("trio_ws.app.WebSocketHandler", WebSocketHandler)})

"""The closing handshake of one connection (RFC 6455 §7), without I/O.

Theory of operation. A connection closes in one of three ways: cleanly, by
exchanging close frames and then closing TCP (§7.1.2-§7.1.4); by *failing*
it (§7.1.7: send a close frame if we still may, then drop TCP at once); or by
losing the transport (EOF or an error before the handshake ended: 1006).
:class:`ClosingState` records which inputs have happened and answers the
questions the I/O layer asks on the way, so that the Trio layer only performs
I/O:

- *What do I answer to the peer's close frame?* :meth:`receive_close` returns
  the close frame due (§5.5.1: echo the peer's status code), or None when
  ours was already sent.
- *Is reading still useful?* :attr:`close_expected` is True while a frame or
  the end of the stream is still awaited: the peer's close frame, or, on the
  client once both close frames are exchanged, the server's EOF (§7.1.1: the
  server closes TCP first, so the client can reuse neither the port nor a
  TIME_WAIT slot). When it turns False, the I/O layer closes TCP.
- *Which close code does the user see?* :attr:`reason`: the first of our own
  close, the peer's close, a failure, or the loss of the transport (1006).
- *Is this a clean close?* :attr:`handshake_done`.

``phase`` moves forward only::

    OPEN ──send_close──▶ CLOSE_SENT ──receive_close──▶ HANDSHAKE_DONE ──▶ CLOSED
      └──receive_close──▶ CLOSE_RECEIVED ──send_close──┘                   ▲
    any phase ──receive_eof / transport_closed───────────────────────────────┘

:meth:`fail` and :meth:`lose_transport` may happen in any phase before
CLOSED; both end reading. The inputs are applied when the I/O layer *acts* on
an event, not when the bytes are parsed: a close frame queued behind messages
the application has not taken yet is not answered (and not reported in
``reason``) before it is the close frame's turn.
"""

from __future__ import annotations

import enum

from .close import ABNORMAL_CLOSURE, NO_STATUS_RCVD, CloseReason

__all__ = ["ClosePhase", "ClosingState"]


class ClosePhase(enum.Enum):
    """Where the closing handshake stands."""

    #: No close frame sent or received.
    OPEN = "open"
    #: We sent our close frame; the peer's is awaited.
    CLOSE_SENT = "close sent"
    #: The peer's close frame arrived; our answer is due.
    CLOSE_RECEIVED = "close received"
    #: Both close frames were exchanged; TCP is still open.
    HANDSHAKE_DONE = "handshake done"
    #: The transport is closed (the peer's EOF, or we closed it).
    CLOSED = "closed"


class ClosingState:
    """The closing handshake's state and decisions for one connection.

    Args:
        is_client: which side of the connection we are (§7.1.1: the server
            closes TCP first, the client waits for it).
    """

    __slots__ = ("_closed", "_failed", "_is_client", "_reason", "_received", "_sent", "wait_for_eof")

    def __init__(self, *, is_client: bool) -> None:
        self._is_client = is_client
        self._sent = False  # our close frame went out
        self._received = False  # the peer's close frame was acted on
        self._closed = False  # the transport is closed
        self._failed = False  # failed (§7.1.7) or transport lost: no clean close
        self._reason: CloseReason | None = None
        #: On the client, wait for the server's EOF after the close frames
        #: (§7.1.1). A close that runs because its owner was cancelled turns it
        #: off: the handshake is what the peer needs, TCP is then dropped.
        self.wait_for_eof = True

    # -- what the I/O layer asks ----------------------------------------------
    @property
    def phase(self) -> ClosePhase:
        """Where the handshake stands."""
        if self._closed:
            return ClosePhase.CLOSED
        if self._sent:
            return ClosePhase.HANDSHAKE_DONE if self._received else ClosePhase.CLOSE_SENT
        return ClosePhase.CLOSE_RECEIVED if self._received else ClosePhase.OPEN

    @property
    def reason(self) -> CloseReason | None:
        """The close code and reason the user sees, or None while open."""
        return self._reason

    @property
    def close_sent(self) -> bool:
        """True once our close frame was produced."""
        return self._sent

    @property
    def close_received(self) -> bool:
        """True once the peer's close frame was acted on."""
        return self._received

    @property
    def handshake_done(self) -> bool:
        """True once both close frames were exchanged (a clean close)."""
        return self._sent and self._received

    @property
    def failed(self) -> bool:
        """True when the connection was failed or its transport lost before a clean close."""
        return self._failed

    @property
    def accepts_messages(self) -> bool:
        """Whether a received data message is still delivered.

        RFC 6455 §1.4: after sending a close frame an endpoint discards the
        data it receives while it waits for the peer's close frame.
        """
        return not self._sent

    @property
    def close_expected(self) -> bool:
        """Whether reading is still useful: a close frame or the peer's EOF is awaited.

        False once the transport is closed, the connection failed, or the
        close frames were exchanged and this side closes TCP itself (the
        server, §7.1.1; a client that does not wait for the server's EOF).
        While our answer to the peer's close is due it is False too: the
        peer sends nothing after its close frame.
        """
        if self._closed or self._failed:
            return False
        if self._received:
            return self._sent and self._is_client and self.wait_for_eof
        return True

    # -- inputs ----------------------------------------------------------------
    def send_close(self, code: int | None, reason: str | None) -> None:
        """Record that our close frame (``code`` None: without a status) goes out.

        Raises:
            RuntimeError: when our close frame was already sent, or the
                transport is closed.
        """
        if self._sent or self._closed:
            raise RuntimeError(f"cannot send a close frame: the connection is {self.phase.value}")
        self._sent = True
        self._set_reason(NO_STATUS_RCVD if code is None else code, reason)

    def receive_close(self, code: int, reason: str | None) -> tuple[int | None, str | None] | None:
        """Record the peer's close frame; return the close frame to answer with, if one is due.

        The answer echoes the peer's status code (§5.5.1), without a status
        when the peer sent none (1005). None when ours was already sent (the
        handshake is then complete) or the transport is closed.
        """
        self._set_reason(code, reason or None)
        self._received = True
        if self._sent or self._closed:
            return None
        return (None if code == NO_STATUS_RCVD else code, reason or None)

    def fail(self, code: int, reason: str | None) -> bool:
        """Fail the connection (§7.1.7); return whether a close frame should still be sent.

        Reading ends at once: the peer's close frame is not awaited.
        """
        self._set_reason(code, reason)
        self._failed = True
        return not (self._sent or self._closed)

    def lose_transport(self, code: int = ABNORMAL_CLOSURE, reason: str | None = None) -> None:
        """The transport failed or a write was cut short: no more frames either way."""
        self._set_reason(code, reason)
        self._failed = True

    def set_user_reason(self, code: int, reason: str | None) -> None:
        """The application asked to close with ``code``: what it sees, unless a reason is known."""
        self._set_reason(code, reason)

    def receive_eof(self) -> None:
        """The peer closed TCP.

        After the closing handshake that is the normal end; before it, the
        connection was lost (1006, unless a close code is already known).
        """
        self.transport_closed()

    def transport_closed(self) -> None:
        """The transport is closed (by either side); reading and writing end."""
        self._closed = True
        self._set_reason(ABNORMAL_CLOSURE, None)

    def _set_reason(self, code: int, reason: str | None) -> None:
        if self._reason is None:
            self._reason = CloseReason(code, reason)

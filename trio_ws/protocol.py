"""The sans-IO WebSocket core of one connection: bytes in, events and bytes out.

Theory of operation. wsproto's :class:`~wsproto.connection.Connection` is the
state machine (open, closing, closed), parses every control frame, every
fragmented or unusual frame, and reports protocol errors with the right close
code. In front of it sits a small frame scanner (:mod:`trio_ws.framing`): when
the next frame is a complete, unfragmented text or binary message that wsproto
would accept, we decode it ourselves (fast unmasking, one copy, optional
bounded inflation) and wsproto never sees it. That is invisible to wsproto's
state: between two messages its parser is idle and a whole data message
changes none of its state. Every other frame is fed to wsproto exactly, byte
for byte, so wsproto's parser is only ever given whole frames (or, for large
ones, a frame streamed to its end) and stays in sync with the scanner.

Sending data messages is ours too (wsproto is only used for control frames),
so its ``_outbound_opcode`` is never involved.

A connection that never needed wsproto before its closing handshake (one
that only carried whole data messages) closes without it too: our close frame
with a common code, and the peer's close frame with 1000 or 1001 and a valid
reason, are written and read here. What that did to the state is kept, and
replayed into wsproto should a later frame need it, so wsproto's state is
always what it would have been had it seen them.

Closing: :class:`~trio_ws.closing.ClosingState` (``core.closing``) owns the
closing handshake's decisions; :meth:`ProtocolCore.receive_close`,
:meth:`ProtocolCore.fail` and :meth:`ProtocolCore.answer_ping` return the
frame the I/O layer must write next, or None when nothing is due.

Limits: an uncompressed data frame whose declared length would take the
message past ``max_message_size`` is refused with 1009 as soon as its header
arrives, before its payload is buffered; compressed messages are bounded by
:class:`~trio_ws.compression.DeflateExtension` while they inflate.
"""

from __future__ import annotations

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason as WsprotoCloseReason
from wsproto.utilities import LocalProtocolError

from .close import INVALID_FRAME_PAYLOAD_DATA, MESSAGE_TOO_BIG, PROTOCOL_ERROR
from .closing import ClosePhase, ClosingState
from .compression import DeflateExtension
from .framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_TEXT,
    FrameHeader,
    encode_frame,
    encode_frame_parts,
    length_error,
    parse_header,
)
from .masking import apply_mask
from .prepared import FramingKey, PreparedMessage
from .protocol_events import CloseReceived, Event, MessageChunk, PingReceived, PongReceived, ProtocolFailure

__all__ = [
    "MessageChunk",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "ProtocolFailure",
    "Event",
    "ProtocolCore",
    "FAST_PATH_MAX_FRAME",
]

#: Frames up to this size are decoded whole by the fast path; larger ones are
#: streamed through wsproto chunk by chunk, so a huge message never has to be
#: buffered whole (see :meth:`~trio_ws.WebSocketConnection.receive_stream`).
FAST_PATH_MAX_FRAME = 4 * 2**20

#: A fast-path frame at least this big that has not fully arrived gets a
#: buffer of its announced length once a part of it has (see
#: :data:`DIRECT_READ_SHARE`): the rest of its payload is read straight
#: into it (:meth:`ProtocolCore.read_target`), not appended to the receive
#: buffer and copied out again.
DIRECT_READ_MIN_FRAME = 16 * 1024

#: The buffer of a frame's announced length is made once 1/DIRECT_READ_SHARE
#: of the frame has arrived: a peer that announces a large frame and sends
#: little of it cannot make us hold more than four times what it sent.
DIRECT_READ_SHARE = 4

#: Close codes read without wsproto (any other goes to wsproto, which checks it).
_PLAIN_CLOSE_CODES = frozenset({1000, 1001})
#: Close codes wsproto would not send as they are (it rewrites or drops them).
_LOCAL_ONLY_CLOSE_CODES = frozenset({1005, 1006, 1015})


class ProtocolCore:
    """One connection's protocol state, without I/O.

    Args:
        is_client: which side of the connection we are.
        extension: the negotiated permessage-deflate codec, or None.
        max_message_size: the message size limit in bytes, or None.
    """

    def __init__(
        self,
        *,
        is_client: bool,
        extension: DeflateExtension | None,
        max_message_size: int | None,
    ) -> None:
        self.is_client = is_client
        self.extension = extension
        self.max_message_size = max_message_size
        # wsproto's state machine is made when the first frame needs it (a
        # control frame, a fragment, our close): an idle connection, or one
        # that only carries whole data messages, does without its 1.7 KiB.
        self._ws: Connection | None = None
        # Close frames sent (``(code, reason)``) and received (the frame's
        # bytes) while wsproto was not made, in order: its state to replay.
        self._closes: list[tuple[int, str | None] | bytes] | None = None
        self._buffer = bytearray()
        self._position = 0
        self._to_wsproto = 0  # bytes of the current frame still owed to wsproto
        self._in_fragmented_message = False
        self._fragment_compressed = False
        self._message_bytes = 0
        self._finished = False  # a close frame or a failure ended parsing
        self._expect_masked = not is_client
        # A large fast-path frame being received into its own buffer: the
        # payload so far, how much of it arrived, and how to finish it.
        self._frame: bytearray | None = None
        self._frame_filled = 0
        self._frame_key: bytes | None = None
        self._frame_text = False
        self._frame_compressed = False
        #: The closing handshake (RFC 6455 §7): its state and decisions.
        self.closing = ClosingState(is_client=is_client)

    # -- state ---------------------------------------------------------------
    @property
    def _wsproto(self) -> Connection:
        ws = self._ws
        if ws is None:
            ws = self._ws = Connection(
                ConnectionType.CLIENT if self.is_client else ConnectionType.SERVER,
                extensions=[self.extension] if self.extension is not None else None,
            )
            for close in self._closes or ():
                if isinstance(close, bytes):
                    ws.receive_data(close)
                    for _ in ws.events():
                        pass
                else:
                    ws.send(CloseConnection(code=close[0], reason=close[1]))
            self._closes = None
        return ws

    @property
    def _state(self) -> ConnectionState:
        """wsproto's state, or what it would be: OPEN until a close frame went either way."""
        if self._ws is not None:
            return self._ws.state
        closes = self._closes
        if not closes:
            return ConnectionState.OPEN
        if len(closes) == 2:
            return ConnectionState.CLOSED
        return ConnectionState.REMOTE_CLOSING if isinstance(closes[0], bytes) else ConnectionState.LOCAL_CLOSING

    @property
    def can_send_data(self) -> bool:
        """True while data, pings and pongs may be sent (no close sent or received)."""
        return self._state is ConnectionState.OPEN

    @property
    def can_send_close(self) -> bool:
        """True while we have not sent a close frame yet."""
        return self._state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)

    @property
    def close_sent(self) -> bool:
        """True once our close frame has been produced."""
        return self.closing.close_sent

    # -- receiving -----------------------------------------------------------
    def read_target(self) -> memoryview | None:
        """Where the next received bytes may be read directly, or None.

        While a large frame is arriving (see :data:`DIRECT_READ_MIN_FRAME`)
        this is the unfilled rest of its payload buffer: read into it, then
        call :meth:`received_into` with the count. Otherwise pass received
        bytes to :meth:`receive_data`.
        """
        frame = self._frame
        if frame is None:
            return None
        return memoryview(frame)[self._frame_filled :]

    def received_into(self, count: int) -> list[Event]:
        """``count`` bytes were read into :meth:`read_target`: the events they make."""
        self._frame_filled += count
        events: list[Event] = []
        if self._frame is not None and self._frame_filled == len(self._frame):
            self._finish_frame(events)
        return events

    def _finish_frame(self, events: list[Event]) -> None:
        frame = self._frame
        assert frame is not None
        key = self._frame_key
        self._frame = None
        # The one copy out of the frame's buffer (unmasking on the way).
        payload = bytes(frame) if key is None else apply_mask(frame, key)
        del frame
        self._fast_message(payload, self._frame_text, self._frame_compressed, events)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process bytes received from the peer and return the events they make."""
        if self._finished:
            return []
        events: list[Event] = []
        frame = self._frame
        if frame is not None:
            filled = self._frame_filled
            take = min(len(frame) - filled, len(data))
            frame[filled : filled + take] = memoryview(data)[:take]
            self._frame_filled = filled + take
            if self._frame_filled < len(frame):
                return events
            self._finish_frame(events)
            data = memoryview(data)[take:]
            if not data or self._finished:
                return events
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data
        try:
            self._parse(events)
        finally:
            if self._position >= len(self._buffer):
                self._buffer.clear()
                self._position = 0
        return events

    def _parse(self, events: list[Event]) -> None:
        buffer = self._buffer
        while not self._finished:
            if self._to_wsproto:
                take = min(self._to_wsproto, len(buffer) - self._position)
                if not take:
                    return
                chunk = bytes(memoryview(buffer)[self._position : self._position + take])
                self._position += take
                self._to_wsproto -= take
                self._feed_wsproto(chunk, events)
                continue
            header = parse_header(buffer, self._position)
            if header is None:
                return
            malformed = length_error(header)
            if malformed is not None:
                # Checked before any limit: a malformed length is 1002, not 1009.
                self._fail(events, PROTOCOL_ERROR, malformed)
                return
            opcode = header.opcode
            if opcode == OP_CLOSE and self._ws is None and self._plain_close(header, events):
                return
            is_data = opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION)
            # RFC 7692 §6.1: only a message's first frame carries RSV1.
            compressed = self._fragment_compressed if opcode == OP_CONTINUATION else bool(header.rsv & 4)
            if (
                is_data
                and not compressed
                and self.max_message_size is not None
                and (opcode == OP_CONTINUATION) == self._in_fragmented_message
            ):
                total = header.length + (self._message_bytes if opcode == OP_CONTINUATION else 0)
                if total > self.max_message_size:
                    self._fail(events, MESSAGE_TOO_BIG, self._too_big(total))
                    return
            if (
                header.fin
                and opcode in (OP_TEXT, OP_BINARY)
                and not self._in_fragmented_message
                and (header.rsv == 0 or (header.rsv == 4 and self.extension is not None))
                and (header.masking_key is not None) is self._expect_masked
                and header.length <= FAST_PATH_MAX_FRAME
                and self._state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING)
            ):
                end = self._position + header.size + header.length
                start = self._position + header.size
                if len(buffer) < end:
                    if header.length >= DIRECT_READ_MIN_FRAME and (
                        (len(buffer) - start) * DIRECT_READ_SHARE >= header.length
                    ):
                        # Receive the rest straight into a buffer of the
                        # announced length (see read_target).
                        frame = bytearray(header.length)
                        arrived = len(buffer) - start
                        frame[:arrived] = memoryview(buffer)[start:]
                        self._frame, self._frame_filled = frame, arrived
                        self._frame_key = header.masking_key
                        self._frame_text, self._frame_compressed = opcode == OP_TEXT, compressed
                        self._position = len(buffer)
                    return
                self._position = end
                # One copy out of the buffer: through a memoryview, not
                # ``bytes(buffer[start:end])``, which copies twice (the slice
                # is a bytearray of its own).
                payload = (
                    bytes(memoryview(buffer)[start:end])
                    if header.masking_key is None
                    else apply_mask(memoryview(buffer)[start:end], header.masking_key)
                )
                self._fast_message(payload, opcode == OP_TEXT, compressed, events)
                continue
            # Everything else goes to wsproto, exactly this frame's bytes.
            if is_data and (header.rsv & 3) == 0:
                if opcode != OP_CONTINUATION:
                    self._message_bytes = 0
                    self._in_fragmented_message = not header.fin
                    self._fragment_compressed = compressed
                elif header.fin:
                    self._in_fragmented_message = False
                if not compressed:
                    self._message_bytes += header.length
            self._to_wsproto = header.size + header.length

    def _plain_close(self, header: FrameHeader, events: list[Event]) -> bool:
        """Read a plain close frame without wsproto; False (nothing consumed) for wsproto to read it.

        Plain: whole, unfragmented, no reserved bits, masked as it must be,
        code 1000 or 1001 and a UTF-8 reason. wsproto would report exactly
        this close; it is kept to replay into wsproto if one is made later.
        """
        if not (
            header.fin
            and header.rsv == 0
            and (header.masking_key is not None) is self._expect_masked
            and 2 <= header.length <= 125
            and self._state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING)
        ):
            return False
        buffer = self._buffer
        start = self._position + header.size
        end = start + header.length
        if len(buffer) < end:
            return False
        payload = bytes(buffer[start:end])
        if header.masking_key is not None:
            payload = apply_mask(payload, header.masking_key)
        code = int.from_bytes(payload[:2], "big")
        if code not in _PLAIN_CLOSE_CODES:
            return False
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return False
        frame = bytes(buffer[self._position : end])
        self._position = end
        self._closes = [*(self._closes or ()), frame]
        events.append(CloseReceived(code, reason))
        self._finished = True
        return True

    def _fast_message(self, payload: bytes, is_text: bool, compressed: bool, events: list[Event]) -> None:
        if compressed:
            assert self.extension is not None
            inflated = self.extension.decompress_message(payload)
            if isinstance(inflated, WsprotoCloseReason):
                self._fail(events, int(inflated), _extension_failure(inflated))
                return
            payload = inflated
            if self.max_message_size is not None and len(payload) > self.max_message_size:
                self._fail(events, MESSAGE_TOO_BIG, self._too_big(len(payload)))
                return
        if is_text:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as err:
                self._fail(events, INVALID_FRAME_PAYLOAD_DATA, f"invalid UTF-8 in text message: {err}")
                return
            events.append(MessageChunk(text, True, True))
        else:
            events.append(MessageChunk(payload, False, True))

    def _feed_wsproto(self, data: bytes, events: list[Event]) -> None:
        wsproto = self._wsproto
        wsproto.receive_data(data)
        for event in wsproto.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if event.data or event.message_finished:
                    chunk: str | bytes = event.data if isinstance(event.data, (str, bytes)) else bytes(event.data)
                    events.append(MessageChunk(chunk, isinstance(event, TextMessage), event.message_finished))
            elif isinstance(event, Ping):
                events.append(PingReceived(bytes(event.payload)))
            elif isinstance(event, Pong):
                events.append(PongReceived(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                if wsproto.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED):
                    events.append(CloseReceived(int(event.code), event.reason or ""))
                    self._finished = True
                else:  # wsproto turns a ParseFailed into a CloseConnection event
                    self._fail(events, int(event.code), event.reason or "protocol error")
                return

    def _fail(self, events: list[Event], code: int, reason: str) -> None:
        events.append(ProtocolFailure(code, reason))
        self._finished = True

    def _too_big(self, size: int) -> str:
        return f"message of {size:,} bytes exceeds max_message_size={self.max_message_size:,}"

    # -- sending -------------------------------------------------------------
    def encode_message(self, data: bytes | str, *, compress: bool = True) -> bytes:
        """Serialise a whole data message as one frame.

        Raises:
            RuntimeError: if called after a close frame was sent or received.
        """
        if not self.can_send_data:
            raise RuntimeError("cannot send data: the connection is closing")
        if isinstance(data, str):
            opcode, payload = OP_TEXT, data.encode("utf-8")
        else:
            opcode, payload = OP_BINARY, data
        if self.extension is not None and compress:
            return encode_frame(opcode, self.extension.compress_message(payload), rsv1=True, mask=self.is_client)
        return encode_frame(opcode, payload, mask=self.is_client)

    def encode_message_parts(self, data: bytes | str, *, compress: bool = True) -> list[bytes]:
        """:meth:`encode_message` as two buffers, the frame's header and its body (see ``encode_frame_parts``).

        Raises:
            RuntimeError: if called after a close frame was sent or received.
        """
        if not self.can_send_data:
            raise RuntimeError("cannot send data: the connection is closing")
        if isinstance(data, str):
            opcode, payload = OP_TEXT, data.encode("utf-8")
        else:
            opcode, payload = OP_BINARY, data
        if self.extension is not None and compress:
            payload = self.extension.compress_message(payload)
            return encode_frame_parts(opcode, payload, rsv1=True, mask=self.is_client)
        return encode_frame_parts(opcode, payload, mask=self.is_client)

    def encode_whole(self, message: str | bytes | PreparedMessage, *, compress: bool = True) -> bytes:
        """Serialise a whole message, plain or prepared, as one frame."""
        if isinstance(message, PreparedMessage):
            return self.encode_prepared(message, compress=compress)
        return self.encode_message(message, compress=compress)

    def encode_prepared(self, message: PreparedMessage, *, compress: bool = True) -> bytes:
        """The frame for a prepared message: shared when framing allows, else our own.

        Raises:
            RuntimeError: if called after a close frame was sent or received.
        """
        if not self.can_send_data:
            raise RuntimeError("cannot send data: the connection is closing")
        shared, key = self.shared_framing_key(compress)
        if not shared:
            return self.encode_message(message.data, compress=compress)
        return message.frame(key)

    def shared_framing_key(self, compress: bool = True) -> tuple[bool, FramingKey]:
        """Whether this connection can send shared frames, and under which key."""
        if self.is_client:
            return False, None  # every client frame has its own masking key
        extension = self.extension
        if extension is None or not compress:
            return True, None
        if not extension.reset_compressor:
            return False, None  # context takeover: this connection's own LZ77 history
        settings = extension.settings
        return True, (extension.compress_bits, settings.compress_level, settings.mem_level)

    def encode_fragment(self, data: bytes, *, is_text: bool, first: bool, fin: bool, compress: bool = True) -> bytes:
        """Serialise one frame of a fragmented message (RFC 6455 §5.4)."""
        if not self.can_send_data:
            raise RuntimeError("cannot send data: the connection is closing")
        opcode = (OP_TEXT if is_text else OP_BINARY) if first else OP_CONTINUATION
        rsv1 = False
        if self.extension is not None:
            rsv1, data = self.extension.compress_fragment(data, first=first, fin=fin, compress=compress)
        return encode_frame(opcode, data, fin=fin, rsv1=rsv1, mask=self.is_client)

    def encode_ping(self, payload: bytes) -> bytes:
        """Serialise a ping frame."""
        return self._wsproto.send(Ping(payload=payload))

    def encode_pong(self, payload: bytes) -> bytes:
        """Serialise a pong frame."""
        return self._wsproto.send(Pong(payload=payload))

    def encode_close(self, code: int | None, reason: str | None) -> bytes:
        """Serialise our close frame (the reason is truncated to fit 125 bytes).

        Raises:
            RuntimeError: if our close frame was already sent, or the
                transport is closed.
        """
        if self.closing.close_sent or self.closing.phase is ClosePhase.CLOSED:
            raise RuntimeError(f"cannot send a close frame: the connection is {self.closing.phase.value}")
        payload = self._plain_close_payload(code, reason)
        if payload is not None:
            # wsproto not made, a code it sends as it is, a reason that needs
            # no truncating: the frame wsproto would write (its state is
            # replayed if it is ever made).
            assert code is not None
            self._closes = [*(self._closes or ()), (code, reason)]
            data = encode_frame(OP_CLOSE, payload, mask=self.is_client)
        else:
            try:
                event = (
                    CloseConnection(code=WsprotoCloseReason.NO_STATUS_RCVD)
                    if code is None
                    else CloseConnection(code=code, reason=reason)
                )
                data = self._wsproto.send(event)
            except LocalProtocolError as err:
                raise RuntimeError(str(err)) from err
        self.closing.send_close(code, reason)
        return data

    def _plain_close_payload(self, code: int | None, reason: str | None) -> bytes | None:
        """Our close frame's payload when it can be written without wsproto, else None."""
        if (
            self._ws is not None
            or code is None
            or not 1000 <= code <= 4999
            or code in _LOCAL_ONLY_CLOSE_CODES
            or self._state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
        ):
            return None
        encoded = reason.encode("utf-8") if reason else b""
        if len(encoded) > 123:
            return None
        return code.to_bytes(2, "big") + encoded

    # -- acting on events: what to write next --------------------------------
    def answer_ping(self, payload: bytes) -> bytes | None:
        """The pong that answers a ping, or None once a close frame was sent or received.

        RFC 6455 §5.5.1: after a close frame no other frame may be sent, so a
        ping that arrives while the connection is closing stays unanswered.
        """
        if not self.can_send_data:
            return None
        return self.encode_pong(payload)

    def receive_close(self, event: CloseReceived) -> bytes | None:
        """Act on the peer's close frame: the close frame to answer with, or None.

        The peer's code becomes the close reason unless one is known; the
        answer echoes it (RFC 6455 §5.5.1). None when our close frame was
        already sent: the handshake is then complete.
        """
        answer = self.closing.receive_close(event.code, event.reason)
        if answer is None or not self.can_send_close:
            return None
        return self.encode_close(*answer)

    def fail(self, code: int, reason: str | None) -> bytes | None:
        """Fail the connection (RFC 6455 §7.1.7): the close frame to send, or None.

        The I/O layer writes the frame (if any) and then closes the transport
        without waiting for the peer's close frame.
        """
        if not self.closing.fail(code, reason) or not self.can_send_close:
            return None
        return self.encode_close(code, reason)


def _extension_failure(code: WsprotoCloseReason) -> str:
    if code is WsprotoCloseReason.MESSAGE_TOO_BIG:
        return "compressed message inflates past max_message_size"
    return "invalid compressed data"

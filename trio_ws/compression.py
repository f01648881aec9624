"""permessage-deflate (RFC 7692): settings, negotiation and a bounded codec.

Theory of operation: :class:`Deflate` holds what the user configures. During
the opening handshake a client calls :func:`client_offer` and, with the
server's answer, :func:`client_finalize`; a server calls :func:`server_accept`
on each offer. Both sides end with a :class:`DeflateExtension`: a wsproto
``Extension`` (wsproto drives it for fragmented messages and control-frame
checks) that also compresses and decompresses whole messages for our fast
path. Both paths share one compressor and one decompressor, so the LZ77
context stays consistent whichever path a message takes.

Inflation is bounded: ``zlib.decompressobj().decompress(data, max_length)``
never produces more than the message limit plus one byte, so a small frame
that would inflate to gigabytes is refused with 1009 after at most
``max_message_size + 1`` bytes of output.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason as WsprotoCloseReason
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = [
    "Deflate",
    "DeflateExtension",
    "ExtensionNegotiationError",
    "EXTENSION_NAME",
    "client_offer",
    "client_finalize",
    "server_accept",
    "parse_extension_header",
    "new_compressor",
    "deflate",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_DEFAULT_SERVER_WINDOW_BITS = 12
_DEFAULT_CLIENT_WINDOW_BITS_ON_SERVER = 12


class ExtensionNegotiationError(ValueError):
    """The peer's permessage-deflate parameters are invalid or unacceptable."""


@dataclass(frozen=True)
class Deflate:
    """Settings of permessage-deflate compression (RFC 7692).

    Pass one as ``compression=Deflate(...)``; ``compression="deflate"`` means
    ``Deflate()``.

    Args:
        server_max_window_bits: on a server, the LZ77 window it compresses with
            (default 12, a 4 KiB window that keeps memory per connection low);
            on a client, the window it asks the server to use (default: no
            request). 9 to 15.
        client_max_window_bits: on a server, the window it asks clients to use
            when they allow it (default 12); on a client, the largest window it
            compresses with (default 15, or less if the server asks). 9 to 15.
        server_no_context_takeover: reset the server's compressor after each
            message (less memory between messages, worse ratio).
        client_no_context_takeover: reset the client's compressor after each
            message.
        compress_level: zlib level, 0 (none) to 9 (best). Default 6.
        mem_level: zlib memory level, 1 to 9. Default 5 (about 64 KiB less per
            connection than zlib's 8, for a small loss of speed).
    """

    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    compress_level: int = 6
    mem_level: int = 5

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None and not 9 <= bits <= 15:
                raise ValueError(f"{name} must be between 9 and 15, not {bits!r}")
        if not 0 <= self.compress_level <= 9:
            raise ValueError(f"compress_level must be between 0 and 9, not {self.compress_level!r}")
        if not 1 <= self.mem_level <= 9:
            raise ValueError(f"mem_level must be between 1 and 9, not {self.mem_level!r}")


Params = dict[str, "str | None"]


def new_compressor(bits: int, level: int, mem_level: int) -> zlib._Compress:
    """A raw-deflate compressor with this window, level and memory level."""
    return zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)


def deflate(compressor: zlib._Compress, data: bytes, *, final: bool = True) -> bytes:
    """Compress a message (or one fragment of it) with a sync flush.

    On the message's last piece the trailing ``00 00 ff ff`` is removed (RFC
    7692 §7.2.1); an empty message becomes the single ``00`` byte that
    §7.2.3.6 describes.
    """
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # zlib ends every sync flush with an empty stored block: 3 header bits,
    # padding, then LEN/NLEN ``00 00 ff ff`` (zlib.h, Z_SYNC_FLUSH). What is
    # left once those four bytes are gone is never empty: for an empty
    # message it is the block's first byte, the ``00`` of §7.2.3.6.
    return out[:-4] if final else out


def parse_extension_header(value: str) -> list[tuple[str, Params]]:
    """Parse a ``Sec-WebSocket-Extensions`` value into ``(name, params)`` offers.

    Raises:
        ExtensionNegotiationError: on a duplicate parameter or an empty name.
    """
    offers: list[tuple[str, Params]] = []
    for item in value.split(","):
        parts = [part.strip() for part in item.split(";")]
        name = parts[0].lower()
        if not name:
            if len(parts) == 1 and not item.strip():
                continue
            raise ExtensionNegotiationError(f"empty extension name in {value!r}")
        params: Params = {}
        for part in parts[1:]:
            if not part:
                continue
            key, sep, raw = part.partition("=")
            key = key.strip().lower()
            if key in params:
                raise ExtensionNegotiationError(f"duplicate parameter {key!r} in {value!r}")
            params[key] = raw.strip().strip('"') if sep else None
        offers.append((name, params))
    return offers


def _bits(params: Params, key: str, *, allow_bare: bool) -> int | bool | None:
    """Read a window-bits parameter: an int, True for a bare one, None if absent."""
    if key not in params:
        return None
    raw = params[key]
    if raw is None:
        if allow_bare:
            return True
        raise ExtensionNegotiationError(f"{key} needs a value")
    if not (raw.isascii() and raw.isdigit()) or not 8 <= int(raw) <= 15:
        raise ExtensionNegotiationError(f"{key}={raw!r} is not between 8 and 15")
    return int(raw)


def _flag(params: Params, key: str) -> bool:
    if key not in params:
        return False
    if params[key] is not None:
        raise ExtensionNegotiationError(f"{key} takes no value")
    return True


_KNOWN = frozenset(
    {
        "server_max_window_bits",
        "client_max_window_bits",
        "server_no_context_takeover",
        "client_no_context_takeover",
    }
)


def _check_known(params: Params) -> None:
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise ExtensionNegotiationError(f"unknown parameter(s) {', '.join(unknown)}")


def client_offer(settings: Deflate) -> str:
    """The ``Sec-WebSocket-Extensions`` offer a client sends for ``settings``."""
    parts = [EXTENSION_NAME]
    if settings.server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if settings.client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if settings.server_max_window_bits is not None:
        parts.append(f"server_max_window_bits={settings.server_max_window_bits}")
    if settings.client_max_window_bits is not None:
        parts.append(f"client_max_window_bits={settings.client_max_window_bits}")
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts)


def client_finalize(settings: Deflate, params: Params, max_message_size: int | None) -> DeflateExtension:
    """Check the server's accepted parameters and build the client's codec.

    Raises:
        ExtensionNegotiationError: when the answer breaks RFC 7692 §7.1 or
            does not honour what the client asked for.
    """
    _check_known(params)
    server_bits = _bits(params, "server_max_window_bits", allow_bare=False)
    client_bits = _bits(params, "client_max_window_bits", allow_bare=False)
    server_nct = _flag(params, "server_no_context_takeover")
    client_nct = _flag(params, "client_no_context_takeover")
    if settings.server_no_context_takeover and not server_nct:
        raise ExtensionNegotiationError("server ignored server_no_context_takeover")
    asked = settings.server_max_window_bits
    if asked is not None and (server_bits is None or int(server_bits) > asked):
        raise ExtensionNegotiationError(f"server ignored server_max_window_bits={asked}")
    own = settings.client_max_window_bits or 15
    if client_bits is not None:
        own = min(own, int(client_bits))
    return DeflateExtension(
        is_client=True,
        compress_bits=max(own, 9),
        decompress_bits=int(server_bits or 15),
        reset_compressor=client_nct or settings.client_no_context_takeover,
        reset_decompressor=server_nct,
        settings=settings,
        max_message_size=max_message_size,
    )


def server_accept(settings: Deflate, params: Params, max_message_size: int | None) -> tuple[str, DeflateExtension]:
    """Answer one client offer: the response header value and the server's codec.

    Raises:
        ExtensionNegotiationError: when the offer is invalid or cannot be
            honoured (the server then tries the next offer, or goes without).
    """
    _check_known(params)
    offered_server_bits = _bits(params, "server_max_window_bits", allow_bare=False)
    offered_client_bits = _bits(params, "client_max_window_bits", allow_bare=True)
    server_nct = _flag(params, "server_no_context_takeover") or settings.server_no_context_takeover
    client_nct = _flag(params, "client_no_context_takeover") or settings.client_no_context_takeover
    server_bits = settings.server_max_window_bits or _DEFAULT_SERVER_WINDOW_BITS
    parts = [EXTENSION_NAME]
    if server_nct:
        parts.append("server_no_context_takeover")
    if client_nct:
        parts.append("client_no_context_takeover")
    if offered_server_bits is not None:
        # RFC 7692 §7.1.2.1: we must not use a larger window than offered;
        # zlib cannot compress with an 8-bit window, so decline that offer.
        if int(offered_server_bits) < 9:
            raise ExtensionNegotiationError("server_max_window_bits=8 is not supported")
        server_bits = min(server_bits, int(offered_server_bits))
    if server_bits != 15 or offered_server_bits is not None:
        parts.append(f"server_max_window_bits={server_bits}")
    client_bits = 15
    if offered_client_bits is not None:
        client_bits = settings.client_max_window_bits or _DEFAULT_CLIENT_WINDOW_BITS_ON_SERVER
        if offered_client_bits is not True:
            client_bits = min(client_bits, int(offered_client_bits))
        parts.append(f"client_max_window_bits={client_bits}")
    codec = DeflateExtension(
        is_client=False,
        compress_bits=server_bits,
        decompress_bits=max(client_bits, 9),
        reset_compressor=server_nct,
        reset_decompressor=client_nct,
        settings=settings,
        max_message_size=max_message_size,
    )
    return "; ".join(parts), codec


class DeflateExtension(Extension):
    """The negotiated permessage-deflate codec of one connection.

    wsproto calls the ``frame_inbound_*`` methods for the received frames
    that go through it; the connection's fast path calls
    :meth:`decompress_message` for whole single-frame messages. Every data
    frame is sent by trio_ws itself (:meth:`compress_message`, or
    :meth:`compress_fragment` for fragments): wsproto only sends control
    frames, which the base class's ``frame_outbound`` leaves alone. All paths
    use the same zlib objects. Not thread-safe; the connection serialises
    sends.
    """

    name = EXTENSION_NAME

    def __init__(
        self,
        *,
        is_client: bool,
        compress_bits: int,
        decompress_bits: int,
        reset_compressor: bool,
        reset_decompressor: bool,
        settings: Deflate,
        max_message_size: int | None,
    ) -> None:
        self.is_client = is_client
        self.compress_bits = compress_bits
        self.decompress_bits = decompress_bits
        self.reset_compressor = reset_compressor
        self.reset_decompressor = reset_decompressor
        self.settings = settings
        self.max_message_size = max_message_size
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._inbound_compressed = False
        self._inbound_control = False  # the frame being received is a control frame
        self._inbound_size = 0
        self._outbound_compressed = False

    # -- wsproto's Extension interface ------------------------------------
    def enabled(self) -> bool:
        """The codec exists only once negotiated, so it is always enabled."""
        return True

    def offer(self) -> str:
        """Not used: trio_ws negotiates with :func:`client_offer`."""
        return client_offer(self.settings)

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> WsprotoCloseReason | RsvBits:
        """Note whether a message starts compressed; RSV1 elsewhere is an error."""
        self._inbound_control = opcode.iscontrol()
        if self._inbound_control:
            if rsv.rsv1:
                return WsprotoCloseReason.PROTOCOL_ERROR
            return RsvBits(False, False, False)
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:  # RFC 7692 §6.1: RSV1 only on the first frame.
                return WsprotoCloseReason.PROTOCOL_ERROR
        else:
            self._inbound_compressed = rsv.rsv1
            self._inbound_size = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | WsprotoCloseReason:
        """Inflate a piece of a compressed message, within the size limit."""
        if self._inbound_control or not self._inbound_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | WsprotoCloseReason | None:
        """At the end of a compressed message, inflate the stripped tail."""
        if self._inbound_control or not (fin and self._inbound_compressed):
            return None
        result = self._inflate(_TAIL)
        self._end_inbound_message()
        return result

    def compress_fragment(self, data: bytes, *, first: bool, fin: bool, compress: bool) -> tuple[bool, bytes]:
        """Compress one frame of a fragmented message.

        Args:
            data: the frame's uncompressed data.
            first: whether this frame starts the message.
            fin: whether this frame ends the message.
            compress: on the first frame, whether this message is compressed
                (ignored on later frames, which follow the first).

        Returns:
            whether to set RSV1 on this frame, and the payload.
        """
        if first:
            self._outbound_compressed = compress
        if not self._outbound_compressed:
            return False, data
        out = deflate(self._get_compressor(), data, final=fin)
        if fin and self.reset_compressor:
            self._compressor = None
        return first, out

    # -- whole messages (the fast path) -------------------------------------
    def compress_message(self, data: bytes) -> bytes:
        """Compress a whole message into one frame's payload (RSV1 set)."""
        out = deflate(self._get_compressor(), data)
        if self.reset_compressor:
            self._compressor = None
        return out

    def decompress_message(self, payload: bytes) -> bytes | WsprotoCloseReason:
        """Inflate a whole single-frame compressed message, within the limit."""
        self._inbound_size = 0
        self._inbound_compressed = True
        result = self._inflate(payload)
        if isinstance(result, bytes):
            tail = self._inflate(_TAIL)
            if isinstance(tail, WsprotoCloseReason):
                return tail
            result += tail
        self._end_inbound_message()
        return result

    # -- internals -----------------------------------------------------------
    def _get_compressor(self) -> zlib._Compress:
        if self._compressor is None:
            self._compressor = new_compressor(self.compress_bits, self.settings.compress_level, self.settings.mem_level)
        return self._compressor

    def _inflate(self, data: bytes) -> bytes | WsprotoCloseReason:
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(-self.decompress_bits)
        limit = self.max_message_size
        try:
            if limit is None:
                out = self._decompressor.decompress(data)
            else:
                budget = limit - self._inbound_size
                out = self._decompressor.decompress(data, budget + 1)
                if len(out) > budget:
                    return WsprotoCloseReason.MESSAGE_TOO_BIG
        except zlib.error:
            return WsprotoCloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inbound_size += len(out)
        return out

    def _end_inbound_message(self) -> None:
        self._inbound_compressed = False
        self._inbound_size = 0
        # RFC 7692 §7.2.3.4 lets a sender end a message with a BFINAL block; the
        # next message then starts a new DEFLATE stream.
        if self.reset_decompressor or (self._decompressor is not None and self._decompressor.eof):
            self._decompressor = None

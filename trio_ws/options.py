"""Connection options: every option's default, validation and documentation, once.

All entry points (``open_websocket``, ``serve_websocket``, ``wrap_server_stream``
and the others) take these as keyword arguments and turn them into one
:class:`ConnectionOptions` value with :meth:`ConnectionOptions.from_kwargs`.
Their docstrings get the option descriptions from :data:`OPTION_DOCS` through
:func:`document_options`, so the text below is the only copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .compression import Deflate

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "MESSAGE_QUEUE_SIZE",
    "MAX_MESSAGE_SIZE",
    "RECEIVE_BYTES",
    "CONN_TIMEOUT",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "MAX_HANDSHAKE_LINE",
    "MAX_HANDSHAKE_HEADERS",
    "ConnectionOptions",
    "ConnectionOptionsDict",
    "OPTION_DOCS",
    "document_options",
]

#: Default size of the receive queue, in message chunks (a whole message unless
#: it arrived fragmented). trio-websocket uses 1; 16 lets a burst through
#: without stalling the reader, like websockets' ``max_queue``.
MESSAGE_QUEUE_SIZE = 16
#: Default limit of a message's size in bytes, after decompression (1 MiB).
MAX_MESSAGE_SIZE = 2**20
#: Default size of one read from the transport (64 KiB; trio-websocket uses 4 KiB,
#: which costs 16 reads per 64 KiB and dominates large-message throughput).
RECEIVE_BYTES = 2**16
#: Default connect and disconnect timeout in seconds (trio-websocket uses 60).
CONN_TIMEOUT = 10.0
#: Default keepalive ping interval in seconds.
PING_INTERVAL = 20.0
#: Default time to wait for a keepalive pong, in seconds.
PING_TIMEOUT = 20.0
#: Default limit of one line of the HTTP handshake, in bytes.
MAX_HANDSHAKE_LINE = 8192
#: Default limit of the number of header lines in the HTTP handshake.
MAX_HANDSHAKE_HEADERS = 128

OPTION_DOCS: dict[str, str] = {
    "message_queue_size": (
        "how many received message chunks (whole messages, unless they arrived "
        "fragmented) may wait for :meth:`get_message`; when the queue is full the "
        "connection stops reading, so backpressure reaches the peer through TCP. "
        "Default 16; None or ``math.inf`` for no limit."
    ),
    "max_message_size": (
        "the largest message accepted, in bytes after decompression; a larger one "
        "closes the connection with 1009 (MESSAGE_TOO_BIG) before it is buffered or "
        "inflated whole. Default 1 MiB; None or ``math.inf`` for no limit."
    ),
    "receive_buffer_size": "the most bytes read from the transport at once. Default 64 KiB.",
    "connect_timeout": (
        "seconds allowed to open the connection and finish the opening handshake "
        "(on a server: to receive and answer the HTTP request). Default 10; None "
        "for no limit."
    ),
    "disconnect_timeout": (
        "seconds allowed for the closing handshake before the transport is closed "
        "anyway. Default 10; None for no limit."
    ),
    "ping_interval": ("seconds between keepalive pings; None disables keepalive. Default 20."),
    "ping_timeout": (
        "seconds to wait for a keepalive pong before closing the connection with "
        "1011 (INTERNAL_ERROR); None waits forever. Default 20."
    ),
    "compression": (
        'permessage-deflate (RFC 7692): ``"deflate"`` (the default) negotiates it '
        "with default settings, a :class:`Deflate` tunes it, None disables it."
    ),
    "max_handshake_line": (
        "the longest line accepted in the HTTP handshake, in bytes; a server answers "
        "a longer header line with 431 (414 for the request line). Default 8192."
    ),
    "max_handshake_headers": (
        "the most header lines accepted in the HTTP handshake; a server answers more with 431. Default 128."
    ),
}


class ConnectionOptionsDict(TypedDict, total=False):
    """The keyword options every entry point accepts (see :data:`OPTION_DOCS`)."""

    message_queue_size: int | float | None
    max_message_size: int | float | None
    receive_buffer_size: int
    connect_timeout: float | None
    disconnect_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    compression: Deflate | str | None
    max_handshake_line: int
    max_handshake_headers: int


def unlimited(value: float | None) -> bool:
    """True for both spellings of "no limit" (or "no timeout"): None and ``math.inf``.

    Options are stored with None; trio-websocket's users pass ``math.inf``.
    """
    return value is None or value == math.inf


def seconds_or_inf(value: float | None) -> float:
    """A stored timeout (None: no timeout) as Trio's timeouts take it: ``math.inf``."""
    return math.inf if value is None else value


def _limit(name: str, value: int | float | None, *, minimum: int) -> int | None:
    """Normalise a size limit: None and ``math.inf`` mean no limit."""
    if unlimited(value):
        return None
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be an int, math.inf or None, not {value!r}")
    if not math.isfinite(value) or value != int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _seconds(name: str, value: float | None) -> float | None:
    """Normalise a timeout: None and ``math.inf`` mean no timeout."""
    if unlimited(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
    if value < 0 or math.isnan(value):
        raise ValueError(f"{name} must be >= 0, not {value!r}")
    return float(value)


def _compression(value: Deflate | str | None) -> Deflate | None:
    if value is None:
        return None
    if isinstance(value, Deflate):
        return value
    if value == "deflate":
        return Deflate()
    raise ValueError(f'compression must be "deflate", a Deflate or None, not {value!r}')


@dataclass(frozen=True)
class ConnectionOptions:
    """Validated connection options; each field is described with the entry points.

    ``None`` means "no limit" for the limits and "no timeout" for timeouts.
    """

    message_queue_size: int | None = MESSAGE_QUEUE_SIZE
    max_message_size: int | None = MAX_MESSAGE_SIZE
    receive_buffer_size: int = RECEIVE_BYTES
    connect_timeout: float | None = CONN_TIMEOUT
    disconnect_timeout: float | None = CONN_TIMEOUT
    ping_interval: float | None = PING_INTERVAL
    ping_timeout: float | None = PING_TIMEOUT
    compression: Deflate | None = field(default_factory=Deflate)
    max_handshake_line: int = MAX_HANDSHAKE_LINE
    max_handshake_headers: int = MAX_HANDSHAKE_HEADERS

    @classmethod
    def from_kwargs(cls, **options: Unpack[ConnectionOptionsDict]) -> ConnectionOptions:
        """Validate keyword options and fill in the defaults.

        Raises:
            TypeError: for an unknown option or a value of the wrong type.
            ValueError: for a value out of range.
        """
        unknown = sorted(set(options) - _OPTION_NAMES)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        values: dict[str, Any] = dict(options)
        if "message_queue_size" in values:
            values["message_queue_size"] = _limit("message_queue_size", values["message_queue_size"], minimum=0)
        if "max_message_size" in values:
            values["max_message_size"] = _limit("max_message_size", values["max_message_size"], minimum=1)
        for name in ("receive_buffer_size", "max_handshake_line", "max_handshake_headers"):
            if name in values:
                limited = _limit(name, values[name], minimum=1)
                if limited is None:
                    raise ValueError(f"{name} must be a positive integer, not {values[name]!r}")
                values[name] = limited
        for name in ("connect_timeout", "disconnect_timeout", "ping_interval", "ping_timeout"):
            if name in values:
                values[name] = _seconds(name, values[name])
        if "compression" in values:
            values["compression"] = _compression(values["compression"])
        return cls(**values)


#: The names ``from_kwargs`` accepts (read once: it runs for every connection).
_OPTION_NAMES = frozenset(f.name for f in fields(ConnectionOptions))

_F = TypeVar("_F")


def document_options(*extra: tuple[str, str]) -> Callable[[_F], _F]:
    """Append the shared option descriptions to a function's docstring.

    Args:
        extra: ``(name, text)`` pairs for options specific to this entry point,
            listed before the shared ones.
    """

    def decorate(func: _F) -> _F:
        doc = (getattr(func, "__doc__", None) or "").rstrip()
        # Match the body's indentation: Python 3.13 strips it from docstrings
        # at compile time, earlier versions keep it (4 spaces in a function).
        body = [line for line in doc.splitlines()[1:] if line.strip()]
        indent = min((line[: len(line) - len(line.lstrip())] for line in body), key=len, default="    ")
        lines = [doc, "", f"{indent}Keyword Args:"]
        for name, text in (*extra, *OPTION_DOCS.items()):
            lines.append(f"{indent}    {name}: {text}")
        func.__doc__ = "\n".join(lines) + "\n"
        return func

    return decorate

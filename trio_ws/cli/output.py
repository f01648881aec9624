"""What the ``trio-ws`` command prints: messages on stdout, status lines on stderr."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..close import close_code_name
from ..connection import WebSocketConnection
from ..endpoint import Endpoint

__all__ = ["describe_close", "format_message", "peer", "prefixed", "status", "write_line"]

_HEX_PREVIEW = 16


def write_line(stream: TextIO, text: str) -> None:
    """Write one line and flush it (the reader may be a pipe)."""
    stream.write(text + "\n")
    stream.flush()


def status(text: str) -> None:
    """A status line on stderr."""
    write_line(sys.stderr, text)


def peer(ws: WebSocketConnection) -> str:
    """The remote address of ``ws`` as ``host:port`` (IPv6 in brackets), or its path."""
    remote = ws.remote
    if isinstance(remote, Endpoint):
        host = f"[{remote.address}]" if ":" in remote.address else remote.address
        return f"{host}:{remote.port}"
    return remote


def prefixed(marker: str, text: str) -> str:
    """Prefix the first line with ``marker``; indent the others to match."""
    indent = "\n" + " " * len(marker)
    return marker + text.replace("\n", indent)


def format_message(message: str | bytes, *, pretty_json: bool = False) -> str:
    """Render a received message as ``connect`` prints it.

    Args:
        message: the received message.
        pretty_json: indent text that parses as JSON.

    Returns:
        ``"< text"`` for text (continuation lines indented by two spaces), and
        ``"< [binary N bytes] hex..."`` for binary, previewing the first 16 bytes.
    """
    if isinstance(message, bytes):
        line = f"< [binary {len(message)} bytes]"
        if message:
            line += " " + message[:_HEX_PREVIEW].hex(" ")
            if len(message) > _HEX_PREVIEW:
                line += " ..."
        return line
    if pretty_json:
        try:
            value = json.loads(message)
        except ValueError:
            pass
        else:
            message = json.dumps(value, indent=2, ensure_ascii=False)
    return prefixed("< ", message)


def describe_close(code: int, reason: str | None) -> str:
    """``"4000 (PRIVATE) bye"``: a close code, its name and the reason if any."""
    text = f"{code} ({close_code_name(code)})"
    return f"{text} {reason}" if reason else text

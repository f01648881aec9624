"""TLS details of a connection: the peer's certificate (mutual TLS).

A server asks clients for a certificate with its ``ssl.SSLContext``
(``verify_mode = ssl.CERT_REQUIRED`` and ``load_verify_locations(...)``); a
client presents one with ``context.load_cert_chain(...)``. Once the TLS
handshake is done, :func:`peer_certificate` reads what the peer presented.
"""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["peer_certificate"]


def peer_certificate(stream: trio.abc.Stream) -> dict[str, Any] | None:
    """The certificate the peer presented on ``stream``, as ``ssl`` decodes it.

    Returns:
        the dict of :meth:`ssl.SSLSocket.getpeercert` (``subject``,
        ``issuer``, ``notAfter``, ``subjectAltName``...) of a certificate the
        local context verified; None on a connection without TLS, before the
        TLS handshake, or when the peer presented no certificate (or the
        local context did not ask for and verify one).
    """
    if not isinstance(stream, trio.SSLStream):
        return None
    try:
        certificate = stream.getpeercert()
    except (ValueError, trio.NeedHandshakeError):  # the handshake has not happened yet
        return None
    return dict(certificate) if certificate else None

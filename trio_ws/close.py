"""Close codes and the :class:`CloseReason` value (RFC 6455 §7.4)."""

from __future__ import annotations

__all__ = [
    "CloseReason",
    "NORMAL_CLOSURE",
    "GOING_AWAY",
    "PROTOCOL_ERROR",
    "UNSUPPORTED_DATA",
    "NO_STATUS_RCVD",
    "ABNORMAL_CLOSURE",
    "INVALID_FRAME_PAYLOAD_DATA",
    "POLICY_VIOLATION",
    "MESSAGE_TOO_BIG",
    "MANDATORY_EXTENSION",
    "MANDATORY_EXT",
    "INTERNAL_ERROR",
    "SERVICE_RESTART",
    "TRY_AGAIN_LATER",
    "TLS_HANDSHAKE",
    "TLS_HANDSHAKE_FAILED",
    "OK_CLOSE_CODES",
    "close_code_name",
    "is_sendable_close_code",
]

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006
INVALID_FRAME_PAYLOAD_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
MANDATORY_EXTENSION = 1010
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
TLS_HANDSHAKE = 1015
#: The names wsproto and trio-websocket use for 1010 and 1015 (what
#: :attr:`CloseReason.name` reports).
MANDATORY_EXT = MANDATORY_EXTENSION
TLS_HANDSHAKE_FAILED = TLS_HANDSHAKE

_NAMES = {
    NORMAL_CLOSURE: "NORMAL_CLOSURE",
    GOING_AWAY: "GOING_AWAY",
    PROTOCOL_ERROR: "PROTOCOL_ERROR",
    UNSUPPORTED_DATA: "UNSUPPORTED_DATA",
    NO_STATUS_RCVD: "NO_STATUS_RCVD",
    ABNORMAL_CLOSURE: "ABNORMAL_CLOSURE",
    INVALID_FRAME_PAYLOAD_DATA: "INVALID_FRAME_PAYLOAD_DATA",
    POLICY_VIOLATION: "POLICY_VIOLATION",
    MESSAGE_TOO_BIG: "MESSAGE_TOO_BIG",
    MANDATORY_EXTENSION: "MANDATORY_EXT",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    SERVICE_RESTART: "SERVICE_RESTART",
    TRY_AGAIN_LATER: "TRY_AGAIN_LATER",
    TLS_HANDSHAKE: "TLS_HANDSHAKE_FAILED",
}

#: Codes that end a connection normally: iterating a connection stops quietly on
#: these, and :class:`~trio_ws.ConnectionClosedOK` is raised instead of
#: :class:`~trio_ws.ConnectionClosedError`. 1005 is what a close frame without a
#: code means (RFC 6455 §7.1.5), which is a normal close too.
OK_CLOSE_CODES = frozenset({NORMAL_CLOSURE, GOING_AWAY, NO_STATUS_RCVD})

# RFC 6455 §7.4.1 marks these as "MUST NOT be set as a status code in a Close
# control frame by an endpoint": they only describe what happened locally.
_LOCAL_ONLY = frozenset({NO_STATUS_RCVD, ABNORMAL_CLOSURE, TLS_HANDSHAKE})


def close_code_name(code: int) -> str:
    """Return the RFC name of ``code``, or a descriptive name for ranges.

    Args:
        code: a WebSocket close code.

    Returns:
        the names trio-websocket (and wsproto) give: ``"NORMAL_CLOSURE"`` and
        so on for the codes RFC 6455 and the IANA registry define,
        ``"IANA_RESERVED"`` for 3000-3999, ``"PRIVATE_RESERVED"`` for
        4000-4999, ``"RFC_RESERVED"`` for other codes in 1000-2999 and
        ``"INVALID_CODE"`` otherwise.
    """
    if code in _NAMES:
        return _NAMES[code]
    if 3000 <= code <= 3999:
        return "IANA_RESERVED"
    if 4000 <= code <= 4999:
        return "PRIVATE_RESERVED"
    if 1000 <= code <= 2999:
        return "RFC_RESERVED"
    return "INVALID_CODE"


def is_sendable_close_code(code: int) -> bool:
    """Tell whether ``code`` may be put in a close frame (RFC 6455 §7.4).

    Args:
        code: a WebSocket close code.

    Returns:
        True for the defined codes that are not local-only, and for 3000-4999.
    """
    if code in _LOCAL_ONLY:
        return False
    return code in _NAMES or 3000 <= code <= 4999


class CloseReason:
    """Why a connection closed: a close code, its name and a reason string.

    Args:
        code: the close code (1000-4999, or 1005/1006 for local conditions).
        reason: the reason text sent with the close frame, or None.
    """

    __slots__ = ("_code", "_name", "_reason")

    def __init__(self, code: int, reason: str | None) -> None:
        self._code = code
        self._name = close_code_name(code)
        self._reason = reason

    @property
    def code(self) -> int:
        """The numeric close code."""
        return self._code

    @property
    def name(self) -> str:
        """The close code's name, for example ``"NORMAL_CLOSURE"``."""
        return self._name

    @property
    def reason(self) -> str | None:
        """The reason text, or None when the peer sent none."""
        return self._reason

    @property
    def is_ok(self) -> bool:
        """True for a normal close: 1000, 1001 or 1005."""
        return self._code in OK_CLOSE_CODES

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CloseReason):
            return NotImplemented
        return (self._code, self._reason) == (other._code, other._reason)

    def __hash__(self) -> int:
        return hash((self._code, self._reason))

    def __repr__(self) -> str:
        # trio-websocket's form, so that code written for it prints the same.
        return f"CloseReason<code={self._code}, name={self._name}, reason={self._reason}>"

"""Unit tests for trio_ws.close: close-code names, sendability and CloseReason."""

from __future__ import annotations

import pytest

from trio_ws import CloseReason
from trio_ws import close as close_mod
from trio_ws.close import OK_CLOSE_CODES, close_code_name, is_sendable_close_code

NAMED = {
    1000: "NORMAL_CLOSURE",
    1001: "GOING_AWAY",
    1002: "PROTOCOL_ERROR",
    1003: "UNSUPPORTED_DATA",
    1005: "NO_STATUS_RCVD",
    1006: "ABNORMAL_CLOSURE",
    1007: "INVALID_FRAME_PAYLOAD_DATA",
    1008: "POLICY_VIOLATION",
    1009: "MESSAGE_TOO_BIG",
    1010: "MANDATORY_EXT",
    1011: "INTERNAL_ERROR",
    1012: "SERVICE_RESTART",
    1013: "TRY_AGAIN_LATER",
    1015: "TLS_HANDSHAKE_FAILED",
}


@pytest.mark.parametrize(("code", "name"), sorted(NAMED.items()))
def test_named_codes(code: int, name: str) -> None:
    assert close_code_name(code) == name
    # the module-level constant of the same name has this value
    assert getattr(close_mod, name) == code


@pytest.mark.parametrize("code", [3000, 3001, 3500, 3999])
def test_library_range(code: int) -> None:
    assert close_code_name(code) == "IANA_RESERVED"


@pytest.mark.parametrize("code", [4000, 4001, 4500, 4999])
def test_private_range(code: int) -> None:
    assert close_code_name(code) == "PRIVATE_RESERVED"


@pytest.mark.parametrize("code", [1004, 1014, 1016, 1100, 2000, 2999])
def test_reserved_range(code: int) -> None:
    assert close_code_name(code) == "RFC_RESERVED"


@pytest.mark.parametrize("code", [-1, 0, 1, 999, 5000, 65535, 70000])
def test_unknown(code: int) -> None:
    assert close_code_name(code) == "INVALID_CODE"


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013])
def test_sendable_defined_codes(code: int) -> None:
    assert is_sendable_close_code(code)


@pytest.mark.parametrize("code", [1005, 1006, 1015])
def test_local_only_codes_not_sendable(code: int) -> None:
    assert not is_sendable_close_code(code)


@pytest.mark.parametrize("code", [3000, 3999, 4000, 4999])
def test_application_codes_sendable(code: int) -> None:
    assert is_sendable_close_code(code)


@pytest.mark.parametrize("code", [-1, 0, 999, 1004, 1014, 1016, 2000, 2999, 5000, 65535])
def test_other_codes_not_sendable(code: int) -> None:
    assert not is_sendable_close_code(code)


def test_sendable_matches_rfc_over_whole_range() -> None:
    expected = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013} | set(range(3000, 5000))
    assert {code for code in range(0, 70000) if is_sendable_close_code(code)} == expected


def test_ok_close_codes() -> None:
    assert frozenset({1000, 1001, 1005}) == OK_CLOSE_CODES


def test_close_reason_attributes() -> None:
    reason = CloseReason(1000, "bye")
    assert reason.code == 1000
    assert reason.name == "NORMAL_CLOSURE"
    assert reason.reason == "bye"
    assert CloseReason(4321, None).name == "PRIVATE_RESERVED"
    assert CloseReason(4321, None).reason is None


def test_close_reason_is_read_only() -> None:
    reason = CloseReason(1000, "bye")
    with pytest.raises(AttributeError):
        reason.code = 1001  # type: ignore[misc]
    with pytest.raises(AttributeError):
        reason.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "ok"),
    [(1000, True), (1001, True), (1005, True), (1002, False), (1006, False), (1011, False), (4000, False)],
)
def test_close_reason_is_ok(code: int, ok: bool) -> None:
    assert CloseReason(code, None).is_ok is ok


def test_close_reason_equality_and_hash() -> None:
    a = CloseReason(1000, "bye")
    b = CloseReason(1000, "bye")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != CloseReason(1000, "other")
    assert a != CloseReason(1001, "bye")
    assert a != CloseReason(1000, None)
    assert a != (1000, "bye")
    assert a != "bye"
    assert CloseReason(1000, None) == CloseReason(1000, None)


def test_close_reason_eq_returns_notimplemented_for_other_types() -> None:
    assert CloseReason(1000, None).__eq__(1000) is NotImplemented


def test_close_reason_repr() -> None:
    # trio-websocket's form, which code written for it may print or parse.
    text = repr(CloseReason(1000, "bye"))
    assert text == "CloseReason<code=1000, name=NORMAL_CLOSURE, reason=bye>"
    assert str(CloseReason(1000, None)) == "CloseReason<code=1000, name=NORMAL_CLOSURE, reason=None>"
    assert "reason=None" in repr(CloseReason(1006, None))
    assert "ABNORMAL_CLOSURE" in repr(CloseReason(1006, None))

"""The closing handshake's state machine (trio_ws.closing), driven without sockets.

The first part drives :class:`ClosingState` input by input; the second drives
two :class:`ProtocolCore` objects (a client and a server) by handing each
other's bytes across, including the races that were bugs: a ping while
closing, a close in the middle of a fragmented message, EOF in every phase.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trio_ws.close import CloseReason
from trio_ws.closing import ClosePhase, ClosingState
from trio_ws.protocol import CloseReceived, MessageChunk, PingReceived, ProtocolCore, ProtocolFailure


# -- ClosingState, input by input ----------------------------------------------------
def test_a_new_connection_is_open_and_reads() -> None:
    state = ClosingState(is_client=True)
    assert state.phase is ClosePhase.OPEN
    assert state.reason is None
    assert state.close_expected
    assert state.accepts_messages
    assert not (state.close_sent or state.close_received or state.handshake_done or state.failed)


@pytest.mark.parametrize("is_client", [True, False], ids=["client", "server"])
def test_we_close_first_then_the_peer_answers(is_client: bool) -> None:
    state = ClosingState(is_client=is_client)
    state.send_close(4000, "done")
    assert state.phase is ClosePhase.CLOSE_SENT
    assert state.reason == CloseReason(4000, "done")
    assert not state.accepts_messages  # RFC 6455 §1.4: data after our close is discarded
    assert state.close_expected  # the peer's close frame is awaited
    assert state.receive_close(1000, "") is None  # nothing to answer: ours went out
    assert state.phase is ClosePhase.HANDSHAKE_DONE
    assert state.handshake_done
    assert state.reason == CloseReason(4000, "done")  # the user sees their own code
    # §7.1.1: the server closes TCP now; the client waits for the server's EOF.
    assert state.close_expected is is_client


@pytest.mark.parametrize("is_client", [True, False], ids=["client", "server"])
def test_the_peer_closes_first_and_we_echo_its_code(is_client: bool) -> None:
    state = ClosingState(is_client=is_client)
    assert state.receive_close(1001, "bye") == (1001, "bye")  # §5.5.1: echo the code
    assert state.phase is ClosePhase.CLOSE_RECEIVED
    assert state.reason == CloseReason(1001, "bye")
    assert state.accepts_messages
    assert not state.close_expected  # nothing follows a close frame; our answer is due
    state.send_close(1001, "bye")
    assert state.phase is ClosePhase.HANDSHAKE_DONE
    assert state.close_expected is is_client


def test_a_close_without_status_is_answered_without_status() -> None:
    state = ClosingState(is_client=False)
    assert state.receive_close(1005, "") == (None, None)
    assert state.reason == CloseReason(1005, None)
    state.send_close(None, None)
    assert state.handshake_done


def test_our_close_without_status_is_reported_as_1005() -> None:
    state = ClosingState(is_client=False)
    state.send_close(None, None)
    assert state.reason == CloseReason(1005, None)


def test_a_client_that_does_not_wait_for_eof_closes_tcp_after_the_handshake() -> None:
    state = ClosingState(is_client=True)
    state.wait_for_eof = False  # a close run because its owner was cancelled
    state.send_close(1000, None)
    assert state.close_expected
    state.receive_close(1000, "")
    assert not state.close_expected


def test_the_users_code_wins_over_a_later_peer_close() -> None:
    state = ClosingState(is_client=True)
    state.set_user_reason(4001, "mine")
    assert state.receive_close(1000, "theirs") == (1000, "theirs")
    assert state.reason == CloseReason(4001, "mine")


@pytest.mark.parametrize("who", ["us", "peer"])
def test_a_second_close_frame_of_ours_is_refused(who: str) -> None:
    state = ClosingState(is_client=True)
    if who == "peer":
        state.receive_close(1000, "")
    state.send_close(1000, None)
    with pytest.raises(RuntimeError, match="cannot send a close frame"):
        state.send_close(1000, None)


def test_no_close_frame_after_the_transport_closed() -> None:
    state = ClosingState(is_client=True)
    state.transport_closed()
    with pytest.raises(RuntimeError, match="connection is closed"):
        state.send_close(1000, None)
    assert state.receive_close(1000, "") is None  # too late to answer


def _open(state: ClosingState) -> None:
    pass


def _sent(state: ClosingState) -> None:
    state.send_close(4000, "ours")


def _received(state: ClosingState) -> None:
    state.receive_close(4001, "theirs")


def _done(state: ClosingState) -> None:
    state.send_close(4000, "ours")
    state.receive_close(1000, "")


# EOF in each phase: (setup, the reason the user sees, a clean close?)
EOF_CASES: dict[str, tuple[Callable[[ClosingState], None], CloseReason, bool]] = {
    "open": (_open, CloseReason(1006, None), False),  # the connection was lost
    "close sent": (_sent, CloseReason(4000, "ours"), False),  # the peer left without answering
    "close received": (_received, CloseReason(4001, "theirs"), False),  # left before our answer
    "handshake done": (_done, CloseReason(4000, "ours"), True),  # the normal end (§7.1.1)
}


@pytest.mark.parametrize("is_client", [True, False], ids=["client", "server"])
@pytest.mark.parametrize("phase", list(EOF_CASES))
def test_eof_in_each_phase(phase: str, is_client: bool) -> None:
    setup, reason, clean = EOF_CASES[phase]
    state = ClosingState(is_client=is_client)
    setup(state)
    state.receive_eof()
    assert state.phase is ClosePhase.CLOSED
    assert state.reason == reason
    assert state.handshake_done is clean
    assert not state.close_expected
    state.receive_eof()  # idempotent
    assert state.reason == reason


@pytest.mark.parametrize(
    ("phase", "sends_close"),
    [("open", True), ("close received", True), ("close sent", False), ("handshake done", False)],
)
def test_failing_in_each_phase(phase: str, sends_close: bool) -> None:
    setup, _, _ = EOF_CASES[phase]
    state = ClosingState(is_client=True)
    setup(state)
    before = state.reason
    assert state.fail(1002, "bad frame") is sends_close  # §7.1.7: a close frame if we still may
    assert state.failed
    assert not state.close_expected  # TCP is dropped without waiting for the peer
    assert state.reason == (before or CloseReason(1002, "bad frame"))


def test_failing_after_the_transport_closed_sends_nothing() -> None:
    state = ClosingState(is_client=False)
    state.transport_closed()
    assert state.fail(1011, "late") is False
    assert state.reason == CloseReason(1006, None)


def test_losing_the_transport_ends_reading_with_its_reason() -> None:
    state = ClosingState(is_client=False)
    state.lose_transport(1006, "transport failed: reset")
    assert state.failed
    assert not state.close_expected
    assert state.reason == CloseReason(1006, "transport failed: reset")
    assert state.phase is ClosePhase.OPEN  # until the I/O layer reports the transport closed
    state.transport_closed()
    assert state.phase is ClosePhase.CLOSED


# -- ProtocolCore: the frames to write next -------------------------------------------
def cores() -> tuple[ProtocolCore, ProtocolCore]:
    client = ProtocolCore(is_client=True, extension=None, max_message_size=None)
    server = ProtocolCore(is_client=False, extension=None, max_message_size=None)
    return client, server


def test_the_answer_to_a_peer_close_echoes_it_and_completes_the_handshake() -> None:
    client, server = cores()
    (event,) = server.receive_data(client.encode_close(4000, "done"))
    assert event == CloseReceived(4000, "done")
    answer = server.receive_close(event)
    assert answer is not None
    assert server.closing.handshake_done
    assert not server.closing.close_expected  # the server closes TCP now
    (echo,) = client.receive_data(answer)
    assert echo == CloseReceived(4000, "done")
    assert client.receive_close(echo) is None  # nothing more to send
    assert client.closing.handshake_done
    assert client.closing.close_expected  # the client waits for the server's EOF
    client.closing.receive_eof()
    assert client.closing.reason == CloseReason(4000, "done")


def test_a_ping_while_we_are_closing_is_not_answered() -> None:
    # trio-websocket #184: a pong written after our close frame broke wsproto.
    client, server = cores()
    server.encode_close(1000, None)
    (ping,) = server.receive_data(client.encode_ping(b"late"))
    assert ping == PingReceived(b"late")
    assert server.answer_ping(ping.payload) is None


def test_a_ping_parsed_before_the_peers_close_but_acted_on_after_it_is_not_answered() -> None:
    client, server = cores()
    ping, close = server.receive_data(client.encode_ping(b"p") + client.encode_close(1000, None))
    assert isinstance(ping, PingReceived) and isinstance(close, CloseReceived)
    assert server.answer_ping(ping.payload) is None  # no frame may follow the peer's close but ours
    assert server.receive_close(close) is not None


def test_a_ping_while_open_is_answered_with_its_payload() -> None:
    client, server = cores()
    (ping,) = server.receive_data(client.encode_ping(b"hello"))
    pong = server.answer_ping(ping.payload)
    assert pong is not None
    (event,) = client.receive_data(pong)
    assert event.payload == b"hello"  # type: ignore[union-attr]


def test_a_close_in_the_middle_of_a_peers_fragmented_message() -> None:
    client, server = cores()
    first = client.encode_fragment(b"par", is_text=False, first=True, fin=False)
    events = server.receive_data(first + client.encode_close(1001, "going"))
    assert events == [MessageChunk(b"par", False, False), CloseReceived(1001, "going")]
    answer = server.receive_close(events[1])  # RFC 6455 §5.4: control frames may interleave
    assert answer is not None
    assert client.receive_data(answer) == [CloseReceived(1001, "going")]
    assert server.closing.reason == CloseReason(1001, "going")


def test_our_close_in_the_middle_of_our_fragmented_message_ends_it() -> None:
    client, server = cores()
    server.receive_data(client.encode_fragment(b"a", is_text=True, first=True, fin=False))
    close = client.encode_close(1000, None)
    with pytest.raises(RuntimeError, match="closing"):
        client.encode_fragment(b"b", is_text=True, first=False, fin=True)
    events = server.receive_data(close)
    assert events == [CloseReceived(1000, "")]


def test_failing_sends_a_close_frame_once_and_stops_reading() -> None:
    client, server = cores()
    (failure,) = server.receive_data(b"\x81\x02\xff\xfe")  # unmasked frame from a client: 1002
    assert isinstance(failure, ProtocolFailure) and failure.code == 1002
    frame = server.fail(failure.code, failure.reason)
    assert frame is not None
    assert client.receive_data(frame) == [CloseReceived(1002, failure.reason)]
    assert not server.closing.close_expected
    assert server.fail(1011, "again") is None  # our close frame already went out
    assert server.closing.reason == CloseReason(1002, failure.reason)


def test_failing_after_our_close_sends_nothing_more() -> None:
    client, _ = cores()
    client.encode_close(1000, None)
    assert client.fail(1011, "keepalive ping timeout") is None
    assert client.closing.reason == CloseReason(1000, None)
    assert not client.closing.close_expected


def test_failing_after_the_peers_close_still_sends_ours() -> None:
    client, server = cores()
    (close,) = server.receive_data(client.encode_close(1000, None))
    server.closing.receive_close(close.code, close.reason)  # acted on, answer not written yet
    frame = server.fail(1011, "internal error")
    assert frame is not None
    assert client.receive_data(frame) == [CloseReceived(1011, "internal error")]


def test_nothing_is_parsed_after_the_peers_close() -> None:
    client, server = cores()
    server.receive_data(client.encode_close(1000, None))
    assert server.receive_data(client.encode_ping(b"x") if client.can_send_data else b"\x89\x80abcd") == []


def test_encode_close_after_the_transport_closed_is_refused() -> None:
    _, server = cores()
    server.closing.transport_closed()
    with pytest.raises(RuntimeError, match="connection is closed"):
        server.encode_close(1000, None)

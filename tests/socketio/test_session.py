"""The Engine.IO session state machine (trio_ws.socketio.session), driven by plain clock values."""

from __future__ import annotations

import json
import re

import pytest

from trio_ws import PreparedMessage
from trio_ws.socketio import (
    EngineConfig,
    EnginePacket,
    EngineSession,
    EngineType,
    MessageReceived,
    ProbeAnswer,
    SessionClosed,
    SessionEnded,
    SessionState,
    UpgradeAborted,
    UpgradeCompleted,
    decode_packet,
    new_sid,
)

E = EngineType
CONFIG = EngineConfig(ping_interval=25.0, ping_timeout=20.0, max_payload=1000, upgrade_timeout=10.0)


def pkt(text: str) -> EnginePacket:
    return decode_packet(text)


def test_open_packet_of_a_polling_session_offers_the_websocket_upgrade() -> None:
    session = EngineSession("abc", "polling", now=0.0, config=CONFIG)
    packet = session.open_packet()
    assert packet.type is E.OPEN
    assert json.loads(str(packet.data)) == {
        "sid": "abc",
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000,
    }
    assert (session.state, session.transport) == (SessionState.OPEN, "polling")


def test_open_packet_of_a_websocket_session_offers_no_upgrade() -> None:
    session = EngineSession("abc", "websocket", now=0.0)
    assert session.handshake.upgrades == ()
    assert session.handshake.ping_interval == 25.0  # Socket.IO's defaults
    assert session.handshake.max_payload == 1_000_000


def test_new_sid_is_random_and_url_safe() -> None:
    sids = {new_sid() for _ in range(100)}
    assert len(sids) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20}", sid) for sid in sids)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match='transport must be "polling" or "websocket", not \'carrier-pigeon\''):
        EngineSession("s", "carrier-pigeon", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ping_timeout must be > 0, not 0"):
        EngineConfig(ping_timeout=0)
    with pytest.raises(ValueError, match="max_payload must be > 0, not -1"):
        EngineConfig(max_payload=-1)


def test_server_pings_every_interval_and_the_pong_resets_the_timer() -> None:
    session = EngineSession("s", "websocket", now=100.0, config=CONFIG)
    assert session.next_deadline() == 125.0
    assert session.tick(124.9) == []
    assert session.data_to_send() == []
    assert session.tick(125.0) == []
    assert session.data_to_send() == [EnginePacket(E.PING)]
    assert session.next_deadline() == 145.0  # the pong is due within ping_timeout
    assert session.receive(pkt("3"), now=130.0) == []
    assert session.next_deadline() == 155.0  # next ping one interval after the pong
    assert session.tick(155.0) == []
    assert session.data_to_send() == [EnginePacket(E.PING)]


def test_late_pong_ends_the_session_with_ping_timeout() -> None:
    session = EngineSession("s", "polling", now=0.0, config=CONFIG)
    session.tick(25.0)
    session.data_to_send()
    session.send("late")
    assert session.tick(44.9) == []
    assert session.tick(45.0) == [SessionEnded("ping timeout", "no pong within ping_timeout=20 s")]
    assert session.state is SessionState.CLOSED
    assert session.next_deadline() is None
    assert session.data_to_send() == []  # nothing is sent to a dead peer
    assert session.tick(1000.0) == []
    assert session.receive(pkt("3"), now=46.0) == []
    assert session.poll() == [EnginePacket(E.CLOSE)]


def test_unsolicited_pong_does_not_move_the_ping_schedule() -> None:
    session = EngineSession("s", "websocket", now=0.0, config=CONFIG)
    assert session.receive(pkt("3"), now=10.0) == []
    assert session.next_deadline() == 25.0


def test_messages_text_and_binary_reach_the_layer_above() -> None:
    session = EngineSession("s", "websocket", now=0.0)
    assert session.receive(pkt("4hello"), now=1.0) == [MessageReceived("hello")]
    assert session.receive(decode_packet(b"\x00\x01"), now=1.0) == [MessageReceived(b"\x00\x01")]
    session.send("a")
    session.send(b"b")
    assert session.data_to_send() == [EnginePacket(E.MESSAGE, "a"), EnginePacket(E.MESSAGE, b"b")]
    assert session.data_to_send() == []


def test_client_ping_is_answered_and_noop_ignored() -> None:
    session = EngineSession("s", "websocket", now=0.0)
    assert session.receive(pkt("2x"), now=1.0) == []
    assert session.receive(pkt("6"), now=1.0) == []
    assert session.data_to_send() == [EnginePacket(E.PONG, "x")]


@pytest.mark.parametrize("text", ['0{"sid":"x"}', "5"])
def test_packets_only_a_server_sends_end_the_session_as_a_parse_error(text: str) -> None:
    session = EngineSession("s", "websocket", now=0.0)
    session.send("queued")
    (event,) = session.receive(pkt(text), now=1.0)
    assert isinstance(event, SessionEnded)
    assert event.reason == "parse error"
    assert "from the client on the websocket transport" in event.detail
    assert session.state is SessionState.CLOSED
    assert session.data_to_send() == []


def test_client_close_ends_the_session_and_a_waiting_poll_gets_a_noop() -> None:
    session = EngineSession("s", "polling", now=0.0)
    session.send("never delivered")
    assert session.receive(pkt("1"), now=1.0) == [SessionEnded("client close")]
    assert session.state is SessionState.CLOSED
    assert session.poll() == [EnginePacket(E.NOOP)]
    with pytest.raises(SessionClosed, match=r"Engine\.IO session s is closed"):
        session.send("x")


def test_server_close_over_polling_sends_pending_messages_then_close_once() -> None:
    session = EngineSession("s", "polling", now=0.0)
    session.send("bye")
    assert session.close() == SessionEnded("server close")
    assert session.close() == SessionEnded("server close")
    assert session.poll() == [EnginePacket(E.MESSAGE, "bye"), EnginePacket(E.CLOSE)]
    assert session.next_deadline() is None


def test_server_close_during_an_upgrade_still_tells_the_polling_client() -> None:
    session = upgrading_session()
    session.close()
    assert session.poll() == [EnginePacket(E.CLOSE)]


def test_server_close_over_websocket_sends_pending_messages_and_no_close_packet() -> None:
    # As the reference server: the WebSocket itself closing tells the client, and a
    # close packet would make python-socketio's client give up reconnecting.
    for session in (EngineSession("s", "websocket", now=0.0), upgraded_session()):
        session.send("bye")
        assert session.close() == SessionEnded("server close")
        assert session.data_to_send() == [EnginePacket(E.MESSAGE, "bye")]
        assert session.close() == SessionEnded("server close")
        assert session.data_to_send() == []
        assert session.next_deadline() is None


def test_transport_closed_ends_the_session_once() -> None:
    session = EngineSession("s", "websocket", now=0.0)
    assert session.transport_closed("connection reset") == [SessionEnded("transport close", "connection reset")]
    assert session.transport_closed() == []


def test_poll_waits_until_there_is_something_to_send() -> None:
    session = EngineSession("s", "polling", now=0.0, config=CONFIG)
    assert session.poll() is None
    session.tick(25.0)
    assert session.poll() == [EnginePacket(E.PING)]
    session.send("a")
    session.send("b")
    assert session.poll() == [EnginePacket(E.MESSAGE, "a"), EnginePacket(E.MESSAGE, "b")]
    assert session.poll() is None


def upgrading_session() -> EngineSession:
    session = EngineSession("s", "polling", now=0.0, config=CONFIG)
    session.start_upgrade(now=5.0)
    return session


def upgraded_session() -> EngineSession:
    session = upgrading_session()
    session.receive_probe(pkt("2probe"), now=6.0)
    assert session.receive_probe(pkt("5"), now=6.0) == [UpgradeCompleted()]
    assert session.transport == "websocket"
    return session


def test_upgrade_probe_noop_and_switch_to_websocket() -> None:
    session = upgrading_session()
    assert session.state is SessionState.UPGRADING
    assert session.next_deadline() == 15.0  # upgrade_timeout
    session.send("before")
    assert session.receive_probe(pkt("2probe"), now=6.0) == [ProbeAnswer(EnginePacket(E.PONG, "probe"))]
    # The waiting GET gets what was queued, then a noop so the client can pause polling.
    assert session.poll() == [EnginePacket(E.MESSAGE, "before")]
    assert session.poll() == [EnginePacket(E.NOOP)]
    # Packets sent during the upgrade and still queued follow on the WebSocket.
    assert session.receive(pkt("4from polling"), now=6.5) == [MessageReceived("from polling")]
    session.send("during")
    assert session.receive_probe(pkt("5"), now=7.0) == [UpgradeCompleted()]
    assert (session.state, session.transport) == (SessionState.OPEN, "websocket")
    assert session.data_to_send() == [EnginePacket(E.MESSAGE, "during")]
    assert session.poll() == [EnginePacket(E.NOOP)]
    assert session.next_deadline() == 25.0  # the ping schedule carries on
    with pytest.raises(ValueError, match="already runs over websocket"):
        session.start_upgrade(now=8.0)


def test_second_websocket_for_the_same_session_is_refused() -> None:
    session = upgrading_session()
    with pytest.raises(ValueError, match="already being upgraded"):
        session.start_upgrade(now=6.0)


def test_websocket_session_cannot_be_upgraded() -> None:
    session = EngineSession("s", "websocket", now=0.0)
    with pytest.raises(ValueError, match="already runs over websocket"):
        session.start_upgrade(now=1.0)


def test_closed_session_cannot_be_upgraded() -> None:
    session = EngineSession("s", "polling", now=0.0)
    session.close()
    with pytest.raises(SessionClosed):
        session.start_upgrade(now=1.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5", "upgrade packet before the probe (2probe)"),
        ("4hi", "unexpected message packet 'hi' on the probing WebSocket"),
        ("2", "unexpected ping packet on the probing WebSocket"),
        ("2" + "x" * 30, "unexpected ping packet 'xxxxxxxxxxxxxxxxxxxx...' on the probing WebSocket"),
    ],
)
def test_anything_but_the_probe_aborts_the_upgrade(text: str, reason: str) -> None:
    session = upgrading_session()
    assert session.receive_probe(pkt(text), now=6.0) == [UpgradeAborted(reason)]
    assert (session.state, session.transport) == (SessionState.OPEN, "polling")
    assert session.poll() is None  # the polling session carries on as before


def test_second_probe_or_binary_aborts_the_upgrade() -> None:
    session = upgrading_session()
    session.receive_probe(pkt("2probe"), now=6.0)
    assert session.receive_probe(pkt("2probe"), now=6.1) == [
        UpgradeAborted("unexpected ping packet 'probe' on the probing WebSocket")
    ]
    session.start_upgrade(now=7.0)
    assert session.receive_probe(decode_packet(b"12"), now=7.1) == [
        UpgradeAborted("unexpected binary message of 2 bytes on the probing WebSocket")
    ]


def test_probe_without_upgrade_in_progress_is_refused() -> None:
    session = EngineSession("s", "polling", now=0.0)
    assert session.receive_probe(pkt("2probe"), now=1.0) == [UpgradeAborted("no upgrade is under way for this session")]


def test_upgrade_times_out_and_polling_continues() -> None:
    session = upgrading_session()
    session.receive_probe(pkt("2probe"), now=6.0)
    assert session.tick(14.9) == []
    assert session.tick(15.0) == [UpgradeAborted("upgrade not completed within upgrade_timeout=10 s")]
    assert session.state is SessionState.OPEN
    assert session.poll() is None  # no more noops once the probe is abandoned
    assert session.next_deadline() == 25.0


def test_probe_socket_closing_aborts_the_upgrade_once() -> None:
    session = upgrading_session()
    assert session.probe_closed() == [UpgradeAborted("the probing WebSocket closed")]
    assert session.probe_closed() == []


def test_ping_timeout_during_an_upgrade_ends_the_session() -> None:
    session = EngineSession("s", "polling", now=0.0, config=CONFIG)
    session.tick(25.0)
    session.start_upgrade(now=40.0)
    assert session.next_deadline() == 45.0
    assert session.tick(45.0)[0] == SessionEnded("ping timeout", "no pong within ping_timeout=20 s")
    assert session.state is SessionState.CLOSED


def test_client_that_does_not_read_ends_the_session_at_max_buffered() -> None:
    session = EngineSession("s", "polling", now=0.0, config=EngineConfig(max_buffered=3))
    for text in "abc":
        session.send(text)
    assert not session.overflowed
    with pytest.raises(SessionClosed, match=r"session s closed: 3 packets unread by the client \(max_buffered=3\)"):
        session.send("d")
    assert session.overflowed
    assert session.state is SessionState.CLOSED
    assert session.data_to_send() == []
    with pytest.raises(SessionClosed, match="is closed"):
        session.send("e")


def test_packets_taken_by_the_transport_free_the_buffer() -> None:
    session = EngineSession("s", "websocket", now=0.0, config=EngineConfig(max_buffered=2))
    for _ in range(10):
        session.send("x")
        session.send("y")
        assert len(session.data_to_send()) == 2
    # Heartbeat packets are never refused: only messages count against the limit.
    session.send("x")
    session.send("y")
    session.tick(25.0)
    assert session.data_to_send()[-1] == EnginePacket(E.PING)


def test_max_buffered_may_be_disabled() -> None:
    session = EngineSession("s", "websocket", now=0.0, config=EngineConfig(max_buffered=None))
    for _ in range(5000):
        session.send("x")
    assert len(session.data_to_send()) == 5000
    with pytest.raises(ValueError, match="max_buffered must be > 0, not 0"):
        EngineConfig(max_buffered=0)


def test_a_prepared_message_packet_is_queued_as_it_is_and_counts_toward_max_buffered() -> None:
    session = EngineSession("abc", "polling", now=0.0, config=EngineConfig(max_buffered=2))
    message = PreparedMessage('4["news",1]')
    session.send_prepared(message)
    session.send_prepared(PreparedMessage(b"\x01"))
    assert session.queued == 2
    with pytest.raises(SessionClosed, match="max_buffered=2"):
        session.send_prepared(message)
    assert session.overflowed
    other = EngineSession("def", "websocket", now=0.0, config=CONFIG)
    other.send_prepared(message)
    assert other.data_to_send()[0] is message
    with pytest.raises(ValueError, match=r"not an Engine\.IO message packet"):
        other.send_prepared(PreparedMessage("2"))
    assert other.queued == 0

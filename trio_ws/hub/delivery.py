"""Delivery to members: fan-out into their outboxes, and the sender that writes each outbox out.

Theory of operation. Fan-out (:func:`fan_out`, :func:`offer`) only ever puts
messages in a member's bounded :class:`~trio_ws.hub.outbox.Outbox`, never
waiting: a full outbox is the overflow policy's business. One sender task per member (started by
``hub.connect``) takes everything queued and writes it in one call, so a
burst of broadcasts costs each member one system call. The sender ends when
the outbox is closed (the member is leaving, or overflowed) or the
connection is; then it closes the connection if the hub asked for it
(overflow: 1008; ``hub.disconnect``: the code requested). A client that
stopped reading would hold a write, or the closing handshake, forever:
:func:`interrupt_send` bounds the write in progress and the close gets
:data:`SLOW_CLOSE_GRACE` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import cast

import trio

from ..close import POLICY_VIOLATION
from ..errors import ConnectionClosed
from ..prepared import PreparedMessage
from .member import DeliveryReport, HubStats, Member, MemberConnection
from .outbox import Outcome
from .variants import Frames, HubMessage, MessageVariants

__all__ = [
    "SLOW_CLOSE_GRACE",
    "BATCH_BYTES",
    "fan_out",
    "offer",
    "offer_message",
    "run_sender",
    "interrupt_send",
    "request_close",
    "addressed",
]

logger = logging.getLogger("trio_ws.hub")

#: Seconds a member being closed (overflow, disconnect) gets to finish the
#: write in progress and the closing handshake before its connection is
#: dropped: a client that stopped reading would otherwise hold them forever.
SLOW_CLOSE_GRACE = 1.0
#: The most bytes of queued messages a member's sender writes at once.
BATCH_BYTES = 256 * 1024


def addressed(members: Iterable[Member], within: str | None) -> Iterable[Member]:
    """The ``members`` a message sent ``within`` reaches: those in the room ``within``, or whose id it is."""
    if within is None:
        return members
    return [member for member in members if member.id == within or within in member._rooms]


def fan_out(members: Iterable[Member], message: HubMessage, skip: Collection[str], stats: HubStats) -> DeliveryReport:
    """Offer ``message`` to each of ``members`` but those in ``skip``; what happened, counted.

    Each member gets the variant of its wire format of a
    :class:`~trio_ws.hub.MessageVariants` (none if it has none); a plain
    message goes to the members of the default wire format only.
    """
    queued = dropped = closed = 0
    variants = message if isinstance(message, MessageVariants) else None
    plain = message if isinstance(message, PreparedMessage) else None
    for member in list(members):
        if member.id in skip:
            continue
        frames: Frames | None
        if variants is not None:
            frames = variants.variant(member.wire_format)
        else:
            # A plain message is the default wire format's.
            frames = plain if member.wire_format is None else None
        if frames is None:
            continue
        outcome = offer(member, frames, stats)
        if outcome is Outcome.QUEUED:
            queued += 1
        elif outcome is Outcome.DROPPED:
            dropped += 1
        else:
            closed += 1
    stats.fanouts += 1
    return DeliveryReport(queued, dropped, closed)


def offer_message(member: Member, message: HubMessage, stats: HubStats) -> Outcome:
    """Offer one member a message sent to it alone (a plain one whatever its wire format)."""
    if isinstance(message, MessageVariants):
        frames = message.variant(member.wire_format)
        if frames is None:
            return Outcome.DROPPED
        return offer(member, frames, stats)
    return offer(member, message, stats)


def offer(member: Member, message: Frames, stats: HubStats) -> Outcome:
    """Queue ``message`` for ``member`` without waiting; an overflow cuts its stalled write short."""
    if member.connection.closed is not None:
        return Outcome.CLOSED
    outbox = member._outbox
    dropped_before = outbox.stats.dropped
    outcome = outbox.put(message)
    if outcome is Outcome.QUEUED:
        stats.queued += 1
    # drop_oldest evicts a queued message and still queues this one.
    stats.dropped += outbox.stats.dropped - dropped_before
    if outbox.overflowed and outcome is Outcome.DROPPED:
        stats.overflow_closes += 1  # counted now: the sender may be cancelled before it closes
        interrupt_send(member)
    return outcome


async def run_sender(member: Member, stats: HubStats) -> None:
    """Write ``member``'s queued messages until its outbox or connection closes, then close it if asked.

    Counts what it delivered in the member's and the hub's ``stats``. Never
    raises for a closed connection.
    """
    connection = member.connection
    outbox = member._outbox
    # One scope for the whole loop (not one per write): interrupt_send bounds
    # whatever the sender is doing, and a sender that is waiting for messages
    # when that happens has been woken to stop anyway.
    with trio.CancelScope() as member._send_scope:
        while True:
            # Everything queued goes out in one write: a burst of broadcasts
            # costs each member one system call and one trip through the
            # scheduler, not one per message. The shared frames are handed to
            # the socket as they are (send_many never joins them), so the
            # burst is not copied once per member.
            batch = await outbox.get_batch(BATCH_BYTES)
            if not batch:
                break
            try:
                # A sender that waited for this batch has just yielded: a write
                # that goes out at once need not yield again (one trip through
                # the scheduler per batch, not two).
                await connection.send_many(_flatten(batch), schedule=not outbox.waited)
            except ConnectionClosed:
                break
            if connection.closed is not None:
                break  # the send was cut short (see interrupt_send): the connection is aborted
            outbox.stats.delivered += len(batch)
            stats.delivered += len(batch)
    member._send_scope = None
    if outbox.overflowed:
        logger.info("member %s is too slow (outbox full): closing with 1008", member.id)
        await _close(connection, POLICY_VIOLATION, "outbound queue overflow")
    elif member._close_request is not None:
        await _close(connection, *member._close_request)


def _flatten(batch: list[Frames]) -> list[PreparedMessage]:
    """The frames of an outbox batch, in order (a multi-frame item is sent back to back)."""
    if not any(isinstance(item, tuple) for item in batch):
        return cast("list[PreparedMessage]", batch)
    frames: list[PreparedMessage] = []
    for item in batch:
        if isinstance(item, PreparedMessage):
            frames.append(item)
        else:
            frames.extend(item)
    return frames


async def _close(connection: MemberConnection, code: int, reason: str) -> None:
    # A client that stopped reading cannot take a close frame either: give
    # the closing handshake a short grace, then drop the connection.
    with trio.move_on_after(SLOW_CLOSE_GRACE):
        await connection.aclose(code, reason)


def interrupt_send(member: Member) -> None:
    """Bound a send in progress: a stalled write is abandoned after :data:`SLOW_CLOSE_GRACE`."""
    scope = member._send_scope
    if scope is not None:
        scope.deadline = min(scope.deadline, trio.current_time() + SLOW_CLOSE_GRACE)


def request_close(member: Member, code: int, reason: str) -> None:
    """Have the sender close ``member``'s connection with ``code`` once the write in progress ends."""
    member._close_request = (code, reason)
    member._outbox.close()
    interrupt_send(member)

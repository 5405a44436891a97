"""Where each read model stands (``polysaga projections``), from what the NATS server knows
of its durable consumers, so it holds across restarts and for every instance at once.

For each stream a read model consumes: its position (the stream sequence everything up to
which it has applied: the consumer's ack floor), the stream's end, how many messages it has
yet to apply, and its lag: the age of the oldest message it has not applied (found by
asking the stream for the next message, on each subject it consumes, after its position).
A read model is ``live`` when that lag is at most LIVE_LAG_S on every stream, ``catching up``
while it works through an older backlog (a first start on a system with history, a
rebuild's aftermath, an outage), and ``not started`` before its consumer exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from polysaga.events import declaration

LIVE_LAG_S = 5.0
LIVE, CATCHING_UP, NOT_STARTED = "live", "catching up", "not started"


@dataclass(frozen=True)
class StreamPosition:
    read_model: str
    stream: str
    position: int  # everything up to this stream sequence is applied
    end: int  # the stream's last sequence
    pending: int  # matching messages not yet applied (not delivered + delivered, unacked)
    lag_s: float  # age of the oldest of them; 0 when there is none
    state: str

    def as_json(self) -> dict[str, Any]:
        return {
            "read_model": self.read_model,
            "stream": self.stream,
            "position": self.position,
            "end": self.end,
            "pending": self.pending,
            "lag_s": round(self.lag_s, 3),
            "state": self.state,
        }


def overall(positions: list[StreamPosition]) -> str:
    """A read model's state: the worst of its streams'."""
    states = {p.state for p in positions}
    for state in (NOT_STARTED, CATCHING_UP):
        if state in states:
            return state
    return LIVE


async def positions(
    js: JetStreamContext, read_models: frozenset[str] = declaration.READ_MODELS
) -> dict[str, list[StreamPosition]]:
    found: dict[str, list[StreamPosition]] = {}
    for read_model in sorted(read_models):
        found[read_model] = [
            await _position(js, read_model, context, events)
            for context, events in declaration.consumed_by(read_model).items()
        ]
    return found


async def _position(
    js: JetStreamContext,
    read_model: str,
    context: declaration.Context,
    events: tuple[declaration.EventSpec, ...],
) -> StreamPosition:
    try:
        end = int((await js.stream_info(context.stream)).state.last_seq or 0)
    except NotFoundError:
        end = 0
    try:
        info = await js.consumer_info(context.stream, read_model)
    except NotFoundError:
        return StreamPosition(read_model, context.stream, 0, end, 0, 0.0, NOT_STARTED)
    position = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    pending = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    lag_s = await _oldest_unapplied_age(js, context.stream, events, position) if pending else 0.0
    state = LIVE if lag_s <= LIVE_LAG_S else CATCHING_UP
    return StreamPosition(read_model, context.stream, position, end, pending, lag_s, state)


async def _oldest_unapplied_age(
    js: JetStreamContext,
    stream: str,
    events: tuple[declaration.EventSpec, ...],
    position: int,
) -> float:
    oldest: datetime | None = None
    for event in events:
        try:
            msg = await js.get_msg(stream, seq=position + 1, subject=event.subject, next=True)
        except NotFoundError:
            continue  # nothing on that subject after the position
        if msg.time is not None and (oldest is None or msg.time < oldest):
            oldest = msg.time
    if oldest is None:
        return 0.0
    stamped = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - stamped).total_seconds())

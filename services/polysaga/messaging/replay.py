"""Replaying history: a read model's one replay consumer (``<service>-replay``, ack-less,
in memory, removed when done) hands every message of a sequence range of a stream to a
callback, decoded and upcast, so a rebuild applies what the live consumer would."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from polysaga.events import declaration
from polysaga.events.decoding import MalformedEventError, UnsupportedVersionError, decode
from polysaga.events.envelope import Envelope
from polysaga.messaging.permissions import replay_consumer_name

log = logging.getLogger(__name__)

_BATCH = 256
_FETCH_TIMEOUT_S = 1.0
# An abandoned replay consumer (the process died) is removed by the server after this.
_INACTIVE_THRESHOLD_S = 60.0

Apply = Callable[[Envelope[Any]], Awaitable[bool]]


@dataclass
class Replayed:
    applied: int = 0
    skipped: int = 0

    def __iadd__(self, other: Replayed) -> Replayed:
        self.applied += other.applied
        self.skipped += other.skipped
        return self


async def stream_end(js: JetStreamContext, context: declaration.Context) -> int:
    return int((await js.stream_info(context.stream)).state.last_seq or 0)


async def replay_range(
    js: JetStreamContext,
    service: str,
    context: declaration.Context,
    first_seq: int,
    last_seq: int,
    apply: Apply,
) -> Replayed:
    """Hand every message of ``context``'s stream with sequence in [first_seq, last_seq]
    that ``service`` consumes to ``apply`` (True: it changed something). What the live
    consumer would dead-letter is skipped and counted."""
    counts = Replayed()
    events = declaration.consumed_by(service).get(context, ())
    if last_seq < first_seq or not events:
        return counts
    name = replay_consumer_name(service)  # the only replay consumer its NATS user may create
    with contextlib.suppress(NotFoundError):  # left by a replay that died mid-way
        await js.delete_consumer(context.stream, name)
    await js.add_consumer(
        context.stream,
        ConsumerConfig(
            name=name,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, first_seq),
            ack_policy=AckPolicy.NONE,
            filter_subjects=sorted(e.subject for e in events),
            inactive_threshold=_INACTIVE_THRESHOLD_S,
            mem_storage=True,
        ),
    )
    sub = await js.pull_subscribe_bind(consumer=name, stream=context.stream)
    try:
        done = False
        while not done:
            try:
                msgs = await sub.fetch(_BATCH, timeout=_FETCH_TIMEOUT_S)
            except (NatsTimeoutError, TimeoutError):
                done = (await sub.consumer_info()).num_pending == 0
                continue
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last_seq:
                    done = True
                    break
                try:
                    event = decode(msg.headers, msg.data, msg.subject)
                except (MalformedEventError, UnsupportedVersionError) as exc:
                    log.warning("replay skips %s #%s: %s", msg.subject, seq, exc)
                    counts.skipped += 1
                else:
                    if await apply(event):
                        counts.applied += 1
                    else:
                        counts.skipped += 1
                # num_pending 0: every matching message the stream holds has been delivered.
                if seq == last_seq or msg.metadata.num_pending == 0:
                    done = True
                    break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(context.stream, name)
    return counts

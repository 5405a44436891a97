"""Connecting to NATS and setting up streams and durable consumers from the declaration."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from polysaga.events import declaration
from polysaga.messaging.permissions import inbox_prefix, streams_touched_by

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
# Streams keep history so read models can be rebuilt. Saga streams are bounded by age (a
# rebuild reproduces the orders of that window; the order service's event store is the
# permanent record); entity streams (users, products) are kept whole, since the latest event
# of an entity may be years old and is its current state.
STREAM_MAX_AGE_S = 30 * 24 * 3600.0
ENTITY_STREAMS = frozenset({"USERS", "CATALOG"})
# Dead letters wait for an operator (DeadLettersPresent fires within 15 minutes): kept as
# long as the saga streams, and at most this much. When it is full, new dead letters are
# refused (discard new), never old ones dropped: the consumer then leaves the message
# unacknowledged and JetStream redelivers it, so nothing is lost and the alert stays on.
# The server reserves a stream's max_bytes from its max_file_store (the chart's default is
# 1G), so this leaves the saga streams the rest.
DEAD_LETTER_MAX_AGE_S = STREAM_MAX_AGE_S
DEAD_LETTER_MAX_BYTES = 256 * 1024**2


async def connect(
    url: str, *, name: str, user: str | None = None, password: str | None = None
) -> Client:
    """A connection that keeps reconnecting for as long as the process lives. Replies arrive
    under the service's own inbox prefix (its NATS user may subscribe to nothing else)."""

    async def report(exc: Exception) -> None:
        # The server's asynchronous errors, permission violations among them.
        log.error("NATS error on %s's connection: %s", name, exc)

    return await nats.connect(
        url,
        name=name,
        user=user,
        password=password,
        inbox_prefix=inbox_prefix(name),
        error_cb=report,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
    )


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    configs = [
        StreamConfig(
            name=context.stream,
            subjects=[context.subjects],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW_S,
            max_age=0 if context.stream in ENTITY_STREAMS else STREAM_MAX_AGE_S,
            num_replicas=replicas,
        )
        for context in declaration.CONTEXTS
    ]
    configs.append(
        StreamConfig(
            name=declaration.DEAD_LETTER_STREAM,
            subjects=[f"{declaration.DEAD_LETTER_PREFIX}.>"],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW_S,
            max_age=DEAD_LETTER_MAX_AGE_S,
            max_bytes=DEAD_LETTER_MAX_BYTES,
            discard=DiscardPolicy.NEW,
            num_replicas=replicas,
        )
    )
    return configs


async def ensure_streams(
    js: JetStreamContext, service: str | None = None, *, replicas: int = 1
) -> None:
    """Create the streams a service touches (all of them when ``service`` is None), from the
    declaration; bring the ones it owns to the declared config. Creating is idempotent, so
    services may start in any order."""
    touched, owned = streams_touched_by(service) if service else (None, None)
    for config in stream_configs(replicas):
        assert config.name is not None
        if touched is not None and config.name not in touched:
            continue
        try:
            await js.add_stream(config)
        except BadRequestError:
            if owned is None or config.name in owned:
                await js.update_stream(config)
            else:
                log.warning(
                    "stream %s differs from the declaration; its owner fixes it", config.name
                )


def consumer_config(
    service: str, events: tuple[declaration.EventSpec, ...], *, ack_wait_s: float
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=service,
        name=service,
        filter_subjects=sorted(e.subject for e in events),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        # Unbounded on the server: the consumer loop dead-letters after its own limit, which
        # also catches a message that crashes the process on every delivery.
        max_deliver=-1,
        max_ack_pending=10_000,
    )


async def ensure_consumers(js: JetStreamContext, service: str, *, ack_wait_s: float) -> None:
    for context, events in declaration.consumed_by(service).items():
        await js.add_consumer(
            context.stream, consumer_config(service, events, ack_wait_s=ack_wait_s)
        )

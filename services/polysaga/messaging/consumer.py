"""The pull-consumer loop every service runs, one per stream it consumes.

Per message: decode it into a typed event at the current version (``decode_message``; a
message that cannot be decoded, whatever its bytes, is dead-lettered at once), then run
the handler in one database transaction together with the inbox record, then ack. A
failing handler is nak'ed with exponential backoff; after ``max_deliveries`` tries the
message goes to the dead-letter subject and is terminated, so it never blocks the stream.
An outage of the service's own store is not the message's fault: the handler is tried
again under the same delivery (the heartbeat keeps it) until the store is back, so a
database restart spends no delivery and dead-letters nothing. Messages of one aggregate
are handled in order; different aggregates concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncConnection

from polysaga import metrics, tracing
from polysaga.events import declaration
from polysaga.events.decoding import UnsupportedVersionError, decode
from polysaga.events.envelope import Envelope, known_event_name
from polysaga.events.payloads import Payload
from polysaga.messaging.dead_letters import Reason, header_text, letter_headers
from polysaga.persistence import outbox

log = logging.getLogger(__name__)

# A handler gets the event and the store handle its runner gives it: a connection inside an
# open transaction (PostgreSQL) or the database (MongoDB).
EventHandler = Callable[[Envelope[Any], Any], Awaitable[None]]
# Runs a handler at most once per (consumer, event id); False when it had already run.
HandlerRunner = Callable[[str, Envelope[Any], EventHandler], Awaitable[bool]]


def decode_message(msg: Msg) -> Envelope[Payload]:
    """The event a message carries, typed and at the current version. Raises
    UnsupportedVersionError for a version this code cannot read and MalformedEventError for
    anything else wrong with it (``polysaga.events.decoding``)."""
    return decode(msg.headers, msg.data, msg.subject)


@dataclass(frozen=True)
class ConsumerPolicy:
    max_deliveries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    ack_wait_s: float = 30.0
    fetch_batch: int = 64
    fetch_timeout_s: float = 1.0
    lag_refresh_s: float = 5.0  # how often consumer_info refreshes the lag gauges

    def backoff(self, deliveries: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, deliveries - 1)))


class EventConsumer:
    """A durable pull consumer of one stream, dispatching to the service's handler map."""

    def __init__(
        self,
        *,
        service: str,
        context: declaration.Context,
        handlers: Mapping[str, EventHandler],
        runner: HandlerRunner,
        js: JetStreamContext,
        policy: ConsumerPolicy,
        store_unavailable: Callable[[BaseException], bool] = lambda _: False,
    ) -> None:
        self.service = service
        self.context = context
        self._handlers = handlers
        self._runner = runner
        self._js = js
        self._policy = policy
        self._store_unavailable = store_unavailable

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self._js.pull_subscribe_bind(durable=self.service, stream=self.context.stream)
        next_lag_refresh = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_lag_refresh:
                    next_lag_refresh = time.monotonic() + self._policy.lag_refresh_s
                    await self.refresh_lag()
                try:
                    msgs = await sub.fetch(
                        self._policy.fetch_batch, timeout=self._policy.fetch_timeout_s
                    )
                except (NatsTimeoutError, TimeoutError):
                    continue  # an empty batch is reported as a timeout by nats-py
                except Exception:
                    if stop.is_set():
                        break
                    log.exception("fetch from %s failed; retrying", self.context.stream)
                    await asyncio.sleep(0.5)
                    continue
                await self.process_batch(msgs)
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may already be draining
                log.debug("unsubscribe failed", exc_info=True)

    async def refresh_lag(self) -> None:
        """Export this consumer's lag from the server's view of it (one cheap request)."""
        stream = self.context.stream
        try:
            info = await self._js.consumer_info(stream, self.service, timeout=2)
        except Exception:
            log.debug("consumer_info for %s failed", stream, exc_info=True)
            return
        metrics.CONSUMER_PENDING.labels(stream=stream).set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.labels(stream=stream).set(info.num_ack_pending or 0)
        metrics.CONSUMER_REDELIVERED.labels(stream=stream).set(info.num_redelivered or 0)

    async def process_batch(self, msgs: Sequence[Msg]) -> None:
        by_aggregate: dict[str, list[Msg]] = {}
        for msg in msgs:
            key = (msg.headers or {}).get("ce-subject", "")
            by_aggregate.setdefault(key, []).append(msg)
        heartbeat = asyncio.create_task(self._keep_alive(msgs))
        try:
            await asyncio.gather(
                *(self._process_in_order(group) for group in by_aggregate.values())
            )
        finally:
            heartbeat.cancel()

    async def _keep_alive(self, msgs: Sequence[Msg]) -> None:
        """Tell the server we are still working, so a long handler is not redelivered."""
        while True:
            await asyncio.sleep(self._policy.ack_wait_s / 3)
            try:
                for msg in msgs:
                    if not msg.is_acked:
                        await msg.in_progress()
            except Exception:  # NATS reconnecting: the next round tries again
                log.debug("in-progress signal failed", exc_info=True)

    async def _process_in_order(self, msgs: Sequence[Msg]) -> None:
        for msg in msgs:
            await self.process(msg)

    async def process(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered or 1
        try:
            event = decode_message(msg)
        except UnsupportedVersionError as exc:
            await self._dead_letter(msg, Reason.UNSUPPORTED_VERSION, str(exc), deliveries)
            return
        except Exception as exc:  # MalformedEventError, or a message decode cannot even read
            await self._dead_letter(msg, Reason.MALFORMED, str(exc) or repr(exc), deliveries)
            return
        if deliveries > self._policy.max_deliveries:
            # Only reached when a previous delivery crashed the process mid-handler.
            await self._dead_letter(msg, Reason.EXHAUSTED, "delivery limit reached", deliveries)
            return
        handler = self._handlers.get(event.name)
        if handler is None:
            await self._dead_letter(msg, Reason.UNSUPPORTED_VERSION, "no handler", deliveries)
            return
        try:
            with tracing.processing(msg.subject, self.service, event):
                handled = await self._run_through_outages(event, handler)
                # Inside the span: the line carries the saga's trace and order ids.
                log.debug(
                    "%s %s %s",
                    "handled" if handled else "duplicate",
                    event.name,
                    event.event_id,
                    extra={"event_type": event.name, "event_id": event.event_id},
                )
        except Exception as exc:
            if deliveries >= self._policy.max_deliveries:
                log.exception("%s gave up on %s %s", self.service, event.name, event.event_id)
                await self._dead_letter(msg, Reason.EXHAUSTED, repr(exc), deliveries)
            else:
                log.warning(
                    "%s failed on %s %s (delivery %d): %r",
                    self.service,
                    event.name,
                    event.event_id,
                    deliveries,
                    exc,
                )
                metrics.EVENTS_CONSUMED.labels(event_type=event.name, outcome="retried").inc()
                await msg.nak(delay=self._policy.backoff(deliveries))
            return
        await msg.ack()
        outcome = "handled" if handled else "duplicate"
        metrics.EVENTS_CONSUMED.labels(event_type=event.name, outcome=outcome).inc()

    async def _run_through_outages(self, event: Envelope[Any], handler: EventHandler) -> bool:
        wait_s = self._policy.backoff_s
        while True:
            try:
                return await self._runner(self.service, event, handler)
            except Exception as exc:
                if not self._store_unavailable(exc):
                    raise
                log.warning(
                    "%s: store unavailable while handling %s %s (%r); retrying in %.1f s",
                    self.service,
                    event.name,
                    event.event_id,
                    exc,
                    wait_s,
                )
                metrics.EVENTS_CONSUMED.labels(event_type=event.name, outcome="retried").inc()
            await asyncio.sleep(wait_s)
            wait_s = min(self._policy.backoff_max_s, wait_s * 2)

    async def _dead_letter(self, msg: Msg, reason: Reason, detail: str, deliveries: int) -> None:
        original = dict(msg.headers or {})
        metadata = msg.metadata
        headers = letter_headers(
            original,
            service=self.service,
            subject=msg.subject,
            stream=metadata.stream,
            stream_seq=metadata.sequence.stream,
            reason=reason,
            detail=detail,
            deliveries=deliveries,
            entered_stream_at=metadata.timestamp,
            now=datetime.now(UTC),
        )
        await self._js.publish(
            declaration.dead_letter_subject(self.service, msg.subject), msg.data, headers=headers
        )
        await msg.term()
        metrics.DEAD_LETTERED.labels(reason=reason.value).inc()
        metrics.EVENTS_CONSUMED.labels(
            event_type=known_event_name(original.get("ce-type", "")), outcome="dead_lettered"
        ).inc()
        original_id = original.get("ce-id") or f"{metadata.stream}-{metadata.sequence.stream}"
        log.error(
            "dead-lettered %s from %s: %s (%s)",
            header_text(original_id),
            msg.subject,
            reason,
            header_text(detail),
        )


def emitting(
    reaction: Callable[[Envelope[Any], Any], Awaitable[Sequence[Envelope[Payload]]]],
    store: Callable[[AsyncConnection], Any],
) -> EventHandler:
    """A handler from a reaction that returns the events it causes: they are written to the
    outbox in the handler's own transaction."""

    async def handle(event: Envelope[Any], conn: AsyncConnection) -> None:
        await outbox.append(conn, await reaction(event, store(conn)))

    return handle

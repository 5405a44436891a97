"""The pull-consumer loop every service runs, one per stream it consumes.

Per fetched batch: decode each message into a typed event at the current version
(``decode_message``; a message that cannot be decoded, whatever its bytes, is dead-lettered
at once), then handle the rest. A store with a batch runner handles the whole
batch in one database transaction with all its inbox records and acks after the commit;
when that transaction fails, the batch is handled again one message at a time, so one bad
message costs only itself. One message at a time: its handler and inbox record in one
transaction, then the ack; a failing handler is nak'ed with exponential backoff, and after
``max_deliveries`` tries it goes to the dead-letter subject, so it never blocks the stream.
A ``PermanentFailure`` (e.g. a mail server refusing the recipient) is dead-lettered at
once. An outage of the service's own store is not the message's fault: the handler is tried
again under the same delivery (the heartbeat keeps it) until the store is back.

Order: one aggregate's messages (``ce-subject``) within a fetched batch are handled in
stream order, and once one of them fails, the later ones of that batch are not handled but
nak'ed with the same backoff. Across fetches there is no order: a nak'ed message comes back
after its backoff, by which time later messages of its aggregate may have been handled (and
two instances of a service share the durable consumer). So no handler relies on order;
each tolerates any order and any number of deliveries (tombstones, version guards,
commutative view writes).

Nothing escapes a batch: a failing ack, nak or dead-letter publish is logged and the message
is left to JetStream's redelivery after the ack wait.
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
# Runs several handlers at once (one transaction, or one coalesced write); for each item,
# False when it had already run. All or nothing: it raises if any handler failed.
BatchRunner = Callable[[str, Sequence[tuple[Envelope[Any], EventHandler]]], Awaitable[list[bool]]]

_HOP_PUBLISHED = metrics.EVENT_HOP.labels(hop="created_to_published")
_HOP_DELIVERED = metrics.EVENT_HOP.labels(hop="published_to_delivered")
_HOP_COMMITTED = metrics.EVENT_HOP.labels(hop="delivered_to_committed")


class PermanentFailure(Exception):
    """The message can never succeed (e.g. a mail server refused the recipient): it is
    dead-lettered at once instead of spending its deliveries."""


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


@dataclass(frozen=True)
class _Work:
    """A decoded message with its handler, ready to run."""

    msg: Msg
    event: Envelope[Any]
    handler: EventHandler
    deliveries: int


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
        batch_runner: BatchRunner | None = None,
    ) -> None:
        self.service = service
        self.context = context
        self._handlers = handlers
        self._runner = runner
        self._batch_runner = batch_runner
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
        """Handle a fetched batch; returns when every message is settled or left to
        redelivery, and never raises."""
        delivered_at = time.time()
        heartbeat = asyncio.create_task(self._keep_alive(msgs))
        try:
            work = [w for w in [await self._admit(msg) for msg in msgs] if w is not None]
            if not work:
                return
            batched = len(work) > 1 and self._batch_runner is not None
            if batched and await self._process_together(work, delivered_at):
                return
            by_aggregate: dict[str, list[_Work]] = {}
            for item in work:
                by_aggregate.setdefault(item.event.aggregate_id, []).append(item)
            async with asyncio.TaskGroup() as group:
                for items in by_aggregate.values():
                    group.create_task(self._process_in_order(items, delivered_at))
        finally:
            heartbeat.cancel()

    async def process(self, msg: Msg) -> None:
        """Handle one message on its own (a batch of one)."""
        await self.process_batch([msg])

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

    async def _admit(self, msg: Msg) -> _Work | None:
        """The message decoded with its handler, or None once it was dead-lettered."""
        deliveries = msg.metadata.num_delivered or 1
        try:
            event = decode_message(msg)
        except UnsupportedVersionError as exc:
            await self._dead_letter(msg, Reason.UNSUPPORTED_VERSION, str(exc), deliveries)
            return None
        except Exception as exc:  # MalformedEventError, or a message decode cannot even read
            await self._dead_letter(msg, Reason.MALFORMED, str(exc) or repr(exc), deliveries)
            return None
        if deliveries > self._policy.max_deliveries:
            # Only reached when a previous delivery crashed the process mid-handler.
            await self._dead_letter(msg, Reason.EXHAUSTED, "delivery limit reached", deliveries)
            return None
        handler = self._handlers.get(event.name)
        if handler is None:
            await self._dead_letter(msg, Reason.UNSUPPORTED_VERSION, "no handler", deliveries)
            return None
        return _Work(msg, event, self._traced(msg.subject, handler), deliveries)

    def _traced(self, subject: str, handler: EventHandler) -> EventHandler:
        """The handler inside its CONSUMER span, continuing the publisher's trace."""

        async def handle(event: Envelope[Any], store: Any) -> None:
            with tracing.processing(subject, self.service, event):
                await handler(event, store)
                # Inside the span: the line carries the saga's trace and order ids.
                log.debug(
                    "handled %s %s",
                    event.name,
                    event.event_id,
                    extra={"event_type": event.name, "event_id": event.event_id},
                )

        return handle

    async def _process_together(self, work: Sequence[_Work], delivered_at: float) -> bool:
        """The whole batch through the batch runner; False if it failed (nothing committed)."""
        assert self._batch_runner is not None
        batch_runner = self._batch_runner
        items = [(w.event, w.handler) for w in work]
        try:
            handled = await self._through_outages(
                lambda: batch_runner(self.service, items), f"a batch of {len(items)}"
            )
        except Exception as exc:
            log.info(
                "%s: a batch of %d from %s failed (%r); handling it one message at a time",
                self.service,
                len(work),
                self.context.stream,
                exc,
            )
            return False
        committed_at = time.time()
        for item, first in zip(work, handled, strict=True):
            await self._acknowledge(item, first, delivered_at, committed_at)
        return True

    async def _process_in_order(self, items: Sequence[_Work], delivered_at: float) -> None:
        held_for: float | None = None
        for item in items:
            try:
                if held_for is not None and item.deliveries < self._policy.max_deliveries:
                    # An earlier message of this aggregate failed: do not overtake it here.
                    metrics.EVENTS_CONSUMED.labels(event_type=item.event.name, outcome="held").inc()
                    await item.msg.nak(delay=held_for)
                    continue
                retry_in = await self._process_one(item, delivered_at)
                if retry_in is not None:
                    held_for = retry_in
            except Exception:
                with tracing.in_context_of(item.event):
                    log.exception(
                        "%s: settling %s %s failed; JetStream redelivers it after the ack wait",
                        self.service,
                        item.event.name,
                        item.event.event_id,
                    )

    async def _process_one(self, item: _Work, delivered_at: float) -> float | None:
        """Run one message's handler and settle it; returns the backoff if it was nak'ed."""
        event, deliveries = item.event, item.deliveries
        try:
            first = await self._through_outages(
                lambda: self._runner(self.service, event, item.handler),
                f"{event.name} {event.event_id}",
            )
        except PermanentFailure as exc:
            with tracing.in_context_of(event):
                log.error(
                    "%s cannot handle %s %s: %s", self.service, event.name, event.event_id, exc
                )
            await self._dead_letter(item.msg, Reason.REJECTED, str(exc), deliveries)
            return None
        except Exception as exc:
            if deliveries >= self._policy.max_deliveries:
                with tracing.in_context_of(event):
                    log.exception("%s gave up on %s %s", self.service, event.name, event.event_id)
                await self._dead_letter(item.msg, Reason.EXHAUSTED, repr(exc), deliveries)
                return None
            with tracing.in_context_of(event):
                log.warning(
                    "%s failed on %s %s (delivery %d): %r",
                    self.service,
                    event.name,
                    event.event_id,
                    deliveries,
                    exc,
                )
            metrics.EVENTS_CONSUMED.labels(event_type=event.name, outcome="retried").inc()
            delay = self._policy.backoff(deliveries)
            await item.msg.nak(delay=delay)
            return delay
        await self._acknowledge(item, first, delivered_at, time.time())
        return None

    async def _acknowledge(
        self, item: _Work, first: bool, delivered_at: float, committed_at: float
    ) -> None:
        try:
            await item.msg.ack()
        except Exception:
            log.warning(
                "%s: ack of %s failed; it will be redelivered (and found in the inbox)",
                self.service,
                item.event.event_id,
                exc_info=True,
            )
            return
        outcome = "handled" if first else "duplicate"
        metrics.EVENTS_CONSUMED.labels(event_type=item.event.name, outcome=outcome).inc()
        if first and item.deliveries == 1:
            # JetStream's time of storing the message (from the ack subject): "published".
            published_at = item.msg.metadata.timestamp.timestamp()
            _HOP_PUBLISHED.observe(max(0.0, published_at - item.event.time.timestamp()))
            _HOP_DELIVERED.observe(max(0.0, delivered_at - published_at))
            _HOP_COMMITTED.observe(max(0.0, committed_at - delivered_at))

    async def _through_outages(self, attempt: Callable[[], Awaitable[Any]], what: str) -> Any:
        wait_s = self._policy.backoff_s
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if isinstance(exc, PermanentFailure) or not self._store_unavailable(exc):
                    raise
                log.warning(
                    "%s: store unavailable while handling %s (%r); retrying in %.1f s",
                    self.service,
                    what,
                    exc,
                    wait_s,
                )
                metrics.EVENTS_CONSUMED.labels(event_type="batch", outcome="retried").inc()
            await asyncio.sleep(wait_s)
            wait_s = min(self._policy.backoff_max_s, wait_s * 2)

    async def _dead_letter(self, msg: Msg, reason: Reason, detail: str, deliveries: int) -> None:
        """Publish the message to its dead-letter subject, then terminate it; a failure to do
        either leaves it to redelivery (never raises)."""
        original = dict(msg.headers or {})
        metadata = msg.metadata
        original_id = original.get("ce-id") or f"{metadata.stream}-{metadata.sequence.stream}"
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
        try:
            await self._js.publish(
                declaration.dead_letter_subject(self.service, msg.subject),
                msg.data,
                headers=headers,
            )
            await msg.term()
        except Exception:
            log.warning(
                "%s: dead-lettering %s failed; it will be redelivered",
                self.service,
                original_id,
                exc_info=True,
            )
            return
        metrics.DEAD_LETTERED.labels(reason=reason.value).inc()
        metrics.EVENTS_CONSUMED.labels(
            event_type=known_event_name(original.get("ce-type", "")), outcome="dead_lettered"
        ).inc()
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

"""Delivery invariants: no lost event and no duplicated effect, judged from what the streams
hold against what every consumer recorded. Pure evaluation over gathered facts (see
``delivery_facts`` for the gathering); no I/O here.

- no_lost_event: every event in a stream was handled by every consumer the declaration
  names for it, or dead-lettered by that consumer; every outbox entry marked published is
  in its stream.
- no_duplicated_effect: one saga step happens once per order: two different events of one
  type for one order (two StockReserved, two charges, two OrderCancelled...) mean an effect
  ran twice. Copies of one event (same event id) are deliveries, not effects. Commands and
  replies are not effects: the orchestrator sends a compensation again when it times out,
  and each copy is answered; the participant's rules make the effect (the event) happen once.
- outbox_drained: no producer holds an unpublished outbox entry.
- consumers_drained: every durable consumer has nothing pending and nothing unacknowledged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polysaga.events import declaration

DELIVERY_INVARIANTS = (
    "no_lost_event",
    "no_duplicated_effect",
    "outbox_drained",
    "consumers_drained",
)

# Streams whose events are saga steps of one order (the aggregate id is the order id).
SAGA_STREAMS = frozenset(
    {
        declaration.ORDERS.stream,
        declaration.INVENTORY.stream,
        declaration.PAYMENTS.stream,
        declaration.NOTIFICATIONS.stream,
        declaration.SAGAS.stream,
    }
)
# An order has one outcome, and an orchestrated saga one end: both would be a duplicated
# (and contradictory) effect.
_OUTCOMES = {
    "OrderConfirmed": "outcome",
    "OrderCancelled": "outcome",
    "SagaCompleted": "saga outcome",
    "SagaCompensated": "saga outcome",
}


def _is_effect(name: str) -> bool:
    try:
        return declaration.spec(name).kind is declaration.Kind.EVENT
    except declaration.UnknownEventError:
        return True


@dataclass(frozen=True)
class StreamEvent:
    stream: str
    event_id: str
    name: str
    aggregate_id: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsumerState:
    pending: int
    ack_pending: int


@dataclass
class DeliveryFacts:
    events: Sequence[StreamEvent]  # every message of the event streams, copies included
    handled: Mapping[str, set[str]]  # consumer -> ids of the events it recorded handling
    dead_lettered: set[tuple[str, str]]  # (consumer, event id)
    outbox_pending: Mapping[str, int]  # producer -> unpublished outbox entries
    outbox_published: Mapping[str, set[str]]  # producer -> ids its outbox marked published
    consumers: Mapping[str, ConsumerState]  # "<service> on <STREAM>" -> its server state


@dataclass
class DeliveryReport:
    events: int
    copies: int  # stream messages beyond the first of each event id
    lost: int
    duplicated_effects: int
    invariants: dict[str, bool]
    violations: list[str]


def _unique(events: Sequence[StreamEvent]) -> dict[str, StreamEvent]:
    first: dict[str, StreamEvent] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    return first


def lost_deliveries(facts: DeliveryFacts) -> list[str]:
    """(consumer, event) pairs the declaration expects and no consumer record accounts for,
    and published outbox entries missing from their stream."""
    unique = _unique(facts.events)
    lost = []
    for event in unique.values():
        try:
            consumers = declaration.spec(event.name).consumers
        except declaration.UnknownEventError:
            continue  # not the declaration's to route; the consumers dead-letter it
        for consumer in sorted(consumers):
            handled = event.event_id in facts.handled.get(consumer, set())
            if not handled and (consumer, event.event_id) not in facts.dead_lettered:
                lost.append(f"{consumer} never handled {event.name} {event.event_id}")
    for producer, published in sorted(facts.outbox_published.items()):
        for event_id in sorted(published - unique.keys()):
            lost.append(f"{producer} marked {event_id} published but it is not in the stream")
    return lost


def duplicated_effects(events: Sequence[StreamEvent]) -> list[str]:
    steps: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in _unique(events).values():
        if event.stream in SAGA_STREAMS and _is_effect(event.name):
            name = _OUTCOMES.get(event.name, event.name)
            steps[(event.aggregate_id, name)].add(event.event_id)
    return [
        f"order {aggregate}: {len(ids)} distinct {name} events"
        for (aggregate, name), ids in sorted(steps.items())
        if len(ids) > 1
    ]


def evaluate_delivery(facts: DeliveryFacts) -> DeliveryReport:
    lost = lost_deliveries(facts)
    duplicated = duplicated_effects(facts.events)
    undrained_outbox = [
        f"{producer}: {n} outbox entries unpublished"
        for producer, n in sorted(facts.outbox_pending.items())
        if n
    ]
    undrained_consumers = [
        f"{name}: {state.pending} pending, {state.ack_pending} unacknowledged"
        for name, state in sorted(facts.consumers.items())
        if state.pending or state.ack_pending
    ]
    unique = _unique(facts.events)
    return DeliveryReport(
        events=len(unique),
        copies=len(facts.events) - len(unique),
        lost=len(lost),
        duplicated_effects=len(duplicated),
        invariants={
            "no_lost_event": not lost,
            "no_duplicated_effect": not duplicated,
            "outbox_drained": not undrained_outbox,
            "consumers_drained": not undrained_consumers,
        },
        violations=[*lost[:30], *duplicated[:30], *undrained_outbox, *undrained_consumers],
    )

"""The order view's projection over its store (``order_view.ports.SummaryView``): how each
consumed event changes the view. Every handler is idempotent and commutative (any order,
any number of deliveries converges), so the same map serves the live consumers and a rebuild
that replays the streams one after the other. The handler map at the bottom says who reacts
to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from order_view.domain import (
    LIFE_EVENTS,
    ORDER_EVENTS,
    SAGA_STEPS,
    history_detail,
    item_count,
)
from order_view.ports import HistoryRecord, OrderFacts, SummaryView
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload

SERVICE = "order-view"
# The saga steps an event made the view refuse (domain.refused_steps), by name; counted
# by the live consumer, not by a rebuild replaying what was counted already.
Refused = list[str]


def _history(event: Envelope[Payload]) -> HistoryRecord:
    return HistoryRecord(event.event_id, event.name, event.time, history_detail(event.data))


def _facts(data: P.OrderEvent) -> OrderFacts:
    return OrderFacts(
        order_id=str(data.order_id),
        user_id=data.user_id,
        items=data.items,
        item_count=item_count(data.items),
        total=data.total,
    )


async def on_order_event(event: Envelope[P.OrderEvent], view: SummaryView) -> Refused:
    """OrderPlaced, OrderConfirmed and OrderCancelled all carry the order as placed."""
    data = event.data
    facts = _facts(data)
    reason = data.reason if isinstance(data, P.OrderCancelled) else None
    refused = await view.apply_order_event(facts, _history(event), reason)
    if isinstance(data, P.OrderPlaced):
        # Always, also when the event was already applied: a crash may have come in between.
        # OrderPlaced alone suffices: its handler writes user_id and the SKUs before reading
        # the users and products, and every order has one, so whichever of it and a profile
        # or product event comes last sees the other. Repeating the copy for the terminal
        # events would add FerretDB round trips (the view's bottleneck) and change nothing.
        await view.copy_names_into(facts.order_id, facts.user_id, [i.sku for i in facts.items])
    return refused


LifeEvent = P.PaymentReceived | P.OrderShipped | P.OrderDelivered


def _tracking_number(events: Sequence[Envelope[Any]]) -> str | None:
    shipped = (e.data for e in events if isinstance(e.data, P.OrderShipped))
    return next((data.tracking_number for data in shipped), None)


async def on_life_event(event: Envelope[LifeEvent], view: SummaryView) -> Refused:
    """The order took its payment, shipped (with its tracking number) or was delivered: a
    step of its history; the last two also move the status it shows (``domain.status_of``)."""
    tracking = _tracking_number([event])
    return await view.apply_life_event(str(event.data.order_id), _history(event), tracking)


SagaStep = (
    P.StockReserved
    | P.StockReservationFailed
    | P.StockReleased
    | P.PaymentProcessed
    | P.PaymentFailed
    | P.PaymentRefunded
)


async def on_saga_step(event: Envelope[SagaStep], view: SummaryView) -> Refused:
    """Reservation, payment and their compensations: a step in the order's history."""
    # The user is copied in by the order events, which always carry user_id; a step that
    # arrives first only records user_id, and the order event's copy fills the profile.
    user_id = getattr(event.data, "user_id", None)
    return await view.apply_saga_step(str(event.data.order_id), _history(event), user_id)


async def on_user_profile(event: Envelope[P.UserProfileEvent], view: SummaryView) -> Refused:
    """UserRegistered (version 1) and UserProfileUpdated both carry the full profile."""
    data = event.data
    user_id = str(data.user_id)
    await view.save_user(user_id, data.name, data.email, data.version)
    await view.copy_user_everywhere(user_id, data.name, data.email, data.version)
    return []


async def on_product_created(event: Envelope[P.ProductCreated], view: SummaryView) -> Refused:
    data = event.data
    await view.save_product_name(data.sku, data.name, data.version)
    await view.save_product_price(data.sku, data.price, data.version)
    await view.copy_product_name_everywhere(data.sku, data.name, data.version)
    return []


async def on_product_renamed(event: Envelope[P.ProductRenamed], view: SummaryView) -> Refused:
    data = event.data
    await view.save_product_name(data.sku, data.name, data.version)
    await view.copy_product_name_everywhere(data.sku, data.name, data.version)
    return []


async def on_product_price_changed(
    event: Envelope[P.ProductPriceChanged], view: SummaryView
) -> Refused:
    # Summaries show the price the order was placed at; the catalogue price is kept beside.
    data = event.data
    await view.save_product_price(data.sku, data.price, data.version)
    return []


async def project_batch(
    events: Sequence[Envelope[Any]], view: SummaryView
) -> list[tuple[Envelope[Any], Refused]]:
    """Apply a batch of events with as few writes as the view allows: the order events and
    saga steps of one order become one write (``SummaryView.apply_together``), falling back
    to one write per event when some were already applied; entity events one by one. Any
    order of any events converges to the same view as applying them one at a time. Returns
    the steps refused, each beside the event (of the batch) whose write refused it."""
    by_order: dict[str, list[Envelope[Any]]] = {}
    entities: list[Envelope[Any]] = []
    unique = {event.event_id: event for event in events}  # a redelivery within the batch
    for event in unique.values():
        if event.name in ORDER_EVENTS or event.name in LIFE_EVENTS or event.name in SAGA_STEPS:
            by_order.setdefault(str(event.data.order_id), []).append(event)
        else:
            entities.append(event)
    refusals: list[tuple[Envelope[Any], Refused]] = []
    for order_id, of_order in by_order.items():
        together = None if len(of_order) == 1 else await _apply_together(order_id, of_order, view)
        if together is None:
            for event in of_order:
                refusals.append((event, await EVENT_HANDLERS[event.name](event, view)))
        else:
            refusals.append((of_order[-1], together))
    for event in entities:
        refusals.append((event, await EVENT_HANDLERS[event.name](event, view)))
    return [(event, refused) for event, refused in refusals if refused]


async def _apply_together(
    order_id: str, events: Sequence[Envelope[Any]], view: SummaryView
) -> Refused | None:
    """The steps refused, or None when some event was already applied (nothing written)."""
    order_events = [e for e in events if e.name in ORDER_EVENTS or e.name in LIFE_EVENTS]
    steps = [e for e in events if e.name in SAGA_STEPS]
    cancelled = [e.data for e in order_events if isinstance(e.data, P.OrderCancelled)]
    with_facts = [e for e in order_events if e.name in ORDER_EVENTS]
    facts = _facts(with_facts[0].data) if with_facts else None
    refused = await view.apply_together(
        order_id,
        [_history(e) for e in order_events],
        [_history(e) for e in steps],
        facts=facts,
        cancel_reason=cancelled[0].reason if cancelled else None,
        tracking_number=_tracking_number(order_events),
        user_id=next((u for e in steps if (u := getattr(e.data, "user_id", None))), None),
    )
    applied = refused is not None
    if applied and facts is not None and any(e.name == "OrderPlaced" for e in order_events):
        # As on_order_event does for OrderPlaced: copy the names after the write.
        await view.copy_names_into(order_id, facts.user_id, [i.sku for i in facts.items])
    return refused


Projection = Callable[[Envelope[Any], SummaryView], Awaitable[Refused]]

EVENT_HANDLERS: dict[str, Projection] = {
    "OrderPlaced": on_order_event,
    "OrderConfirmed": on_order_event,
    "OrderCancelled": on_order_event,
    "StockReserved": on_saga_step,
    "StockReservationFailed": on_saga_step,
    "StockReleased": on_saga_step,
    "PaymentProcessed": on_saga_step,
    "PaymentFailed": on_saga_step,
    "PaymentRefunded": on_saga_step,
    "PaymentReceived": on_life_event,
    "OrderShipped": on_life_event,
    "OrderDelivered": on_life_event,
    "UserRegistered": on_user_profile,
    "UserProfileUpdated": on_user_profile,
    "ProductCreated": on_product_created,
    "ProductRenamed": on_product_renamed,
    "ProductPriceChanged": on_product_price_changed,
}

"""The order view's projection: how each consumed event changes the view. Every handler is
idempotent and commutative (any order, any number of deliveries converges), so the same map
serves the live consumers and a rebuild that replays the streams one after the other. The
handler map at the bottom says who reacts to what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from order_view.adapters import HistoryRecord, OrderFacts, ViewStore
from order_view.domain import history_detail, item_count, status_write
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload

SERVICE = "order-view"


def _history(event: Envelope[Payload]) -> HistoryRecord:
    return HistoryRecord(event.event_id, event.name, event.time, history_detail(event.data))


async def on_order_event(event: Envelope[P.OrderEvent], view: ViewStore) -> None:
    """OrderPlaced, OrderConfirmed and OrderCancelled all carry the order as placed."""
    data = event.data
    facts = OrderFacts(
        order_id=str(data.order_id),
        user_id=data.user_id,
        items=data.items,
        item_count=item_count(data.items),
        total=data.total,
    )
    reason = data.reason if isinstance(data, P.OrderCancelled) else None
    await view.apply_order_event(facts, _history(event), status_write(event.name), reason)
    if isinstance(data, P.OrderPlaced):
        # Always, also when the event was already applied: a crash may have come in between.
        # OrderPlaced alone suffices: its handler writes user_id and the SKUs before reading
        # the users and products, and every order has one, so whichever of it and a profile
        # or product event comes last sees the other. Repeating the copy for the terminal
        # events would add FerretDB round trips (the view's bottleneck) and change nothing.
        await view.copy_names_into(facts.order_id, facts.user_id, [i.sku for i in facts.items])


SagaStep = (
    P.StockReserved
    | P.StockReservationFailed
    | P.StockReleased
    | P.PaymentProcessed
    | P.PaymentFailed
    | P.PaymentRefunded
)


async def on_saga_step(event: Envelope[SagaStep], view: ViewStore) -> None:
    """Reservation, payment and their compensations: a step in the order's history."""
    # The user is copied in by the order events, which always carry user_id; a step that
    # arrives first only records user_id, and the order event's copy fills the profile.
    user_id = getattr(event.data, "user_id", None)
    await view.apply_saga_step(str(event.data.order_id), _history(event), user_id)


async def on_user_profile(event: Envelope[P.UserProfileEvent], view: ViewStore) -> None:
    """UserRegistered (version 1) and UserProfileUpdated both carry the full profile."""
    data = event.data
    user_id = str(data.user_id)
    await view.save_user(user_id, data.name, data.email, data.version)
    await view.copy_user_everywhere(user_id, data.name, data.email, data.version)


async def on_product_created(event: Envelope[P.ProductCreated], view: ViewStore) -> None:
    data = event.data
    await view.save_product_name(data.sku, data.name, data.version)
    await view.save_product_price(data.sku, data.price, data.version)
    await view.copy_product_name_everywhere(data.sku, data.name, data.version)


async def on_product_renamed(event: Envelope[P.ProductRenamed], view: ViewStore) -> None:
    data = event.data
    await view.save_product_name(data.sku, data.name, data.version)
    await view.copy_product_name_everywhere(data.sku, data.name, data.version)


async def on_product_price_changed(event: Envelope[P.ProductPriceChanged], view: ViewStore) -> None:
    # Summaries show the price the order was placed at; the catalogue price is kept beside.
    data = event.data
    await view.save_product_price(data.sku, data.price, data.version)


Projection = Callable[[Envelope[Any], ViewStore], Awaitable[None]]

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
    "UserRegistered": on_user_profile,
    "UserProfileUpdated": on_user_profile,
    "ProductCreated": on_product_created,
    "ProductRenamed": on_product_renamed,
    "ProductPriceChanged": on_product_price_changed,
}

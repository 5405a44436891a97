"""What the order view's projection needs from its store, as the service owns it: writes
that are each idempotent and commutative (any order, any number of deliveries converges).
``order_view.adapters`` implements it on MongoDB, one generation of the view at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from polysaga.events.payloads import OrderLine


@dataclass(frozen=True)
class OrderFacts:
    """What every order event carries, identically: the order as it was placed."""

    order_id: str
    user_id: str
    items: Sequence[OrderLine]
    item_count: int
    total: str


@dataclass(frozen=True)
class HistoryRecord:
    """One step of an order's saga, as its history shows it."""

    event_id: str
    step: str
    at: datetime
    detail: str | None


class SummaryView(Protocol):
    async def apply_order_event(
        self,
        facts: OrderFacts,
        record: HistoryRecord,
        cancel_reason: str | None,
    ) -> list[str]:
        """The saga steps this event makes the view refuse (``domain.refused_steps``), each
        named once, when it happens; none when the event was already applied."""
        ...

    async def apply_life_event(
        self, order_id: str, record: HistoryRecord, tracking_number: str | None
    ) -> list[str]:
        """As ``apply_order_event``, for the rest of the order's life (its payment received,
        shipment, delivery), which carries no facts."""
        ...

    async def apply_saga_step(
        self, order_id: str, record: HistoryRecord, user_id: str | None
    ) -> list[str]:
        """As ``apply_order_event``. The step's user id only seeds a summary no order event
        has reached yet."""
        ...

    async def apply_together(
        self,
        order_id: str,
        order_records: Sequence[HistoryRecord],
        step_records: Sequence[HistoryRecord],
        *,
        facts: OrderFacts | None,
        cancel_reason: str | None,
        tracking_number: str | None,
        user_id: str | None,
    ) -> list[str] | None:
        """Several events of one order in one write, as their one-event writes merged: the
        steps refused, or None (nothing written) when any of them was already applied."""
        ...

    async def copy_names_into(self, order_id: str, user_id: str, skus: Sequence[str]) -> None:
        """Give the order the profile and product names known now, where newer."""
        ...

    async def save_user(self, user_id: str, name: str, email: str, version: int) -> None: ...

    async def copy_user_everywhere(
        self, user_id: str, name: str, email: str, version: int
    ) -> None: ...

    async def save_product_name(self, sku: str, name: str, version: int) -> None: ...

    async def save_product_price(self, sku: str, price: str, version: int) -> None: ...

    async def copy_product_name_everywhere(self, sku: str, name: str, version: int) -> None: ...

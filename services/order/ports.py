"""What the order service's application needs from its store, as the service owns it: the
event stream of each order (append-only, optimistic concurrency), the status table over it,
the price replica and the idempotency keys. ``order.adapters`` implements it on PostgreSQL,
the unit tests in memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from order.domain import Order, OrderEvent
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.unit_of_work import RetryableConflict


class ConcurrencyConflictError(RetryableConflict):
    """Someone appended to this order's stream first; reload and decide again."""


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    order_id: str
    version: int


@dataclass(frozen=True)
class OverdueOrder:
    order_id: str
    trace_context: dict[str, str]  # of the request that placed it; empty when untraced


@dataclass(frozen=True)
class OrderListing:
    order_id: str
    user_id: str
    status: str
    version: int
    updated_at: datetime


class OrderStore(Protocol):
    # --- the event stream -----------------------------------------------------------------

    async def load(self, order_id: str, as_of: datetime | None = None) -> Order | None:
        """The order folded from its events (up to ``as_of``), or None if it has none."""
        ...

    async def events(self, order_id: str) -> list[dict[str, object]]:
        """The order's stream as stored, oldest first."""
        ...

    async def append(
        self, order: Order | None, event: OrderEvent, trace_headers: dict[str, str] | None = None
    ) -> Order:
        """Append ``event`` after ``order`` (None: the first event) and publish it; raises
        ConcurrencyConflictError if another writer appended first."""
        ...

    async def publish(self, events: Sequence[Envelope[Payload]]) -> None:
        """Publish events about no order of this store (a payment it rejects), in this unit."""
        ...

    # --- the status table -----------------------------------------------------------------

    async def overdue(self, now: datetime, limit: int) -> list[OverdueOrder]:
        """Pending orders past their deadline, oldest deadline first, locked for this unit."""
        ...

    async def list_orders(
        self, status: str | None, after: str | None, limit: int
    ) -> list[OrderListing]: ...

    async def pending_counts(self, now: datetime) -> tuple[int, int]:
        """(orders pending, of which past their deadline)."""
        ...

    async def count_by_status(self) -> dict[str, int]: ...

    # --- the price replica ----------------------------------------------------------------

    async def prices(self, skus: Sequence[str]) -> dict[str, Decimal]: ...

    async def set_price(self, sku: str, price: Decimal) -> None:
        """A manual override, replaced by the catalog's next change."""
        ...

    async def learn_price(self, sku: str, price: Decimal, version: int) -> bool:
        """Take the catalog's price at ``version`` unless a newer one is known."""
        ...

    # --- idempotency keys -----------------------------------------------------------------

    async def claim_key(self, key: str, request_hash: str, order_id: str) -> StoredKey | None:
        """Reserve ``key`` for this request; the earlier request's record if it is taken."""
        ...

"""The order store in memory: the same optimistic concurrency on each order's stream, the
same version guard on the price replica, the same first-claim-wins idempotency keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from fakes import FakeUnitOfWork
from order.domain import Order, OrderEvent, OrderStatus
from order.ports import ConcurrencyConflictError, OrderListing, OrderStore, OverdueOrder, StoredKey
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.unit_of_work import UnitOfWork


class FakeOrderStore:
    def __init__(self, prices: dict[str, Decimal] | None = None) -> None:
        self.streams: dict[str, list[OrderEvent]] = {}
        self.keys: dict[str, StoredKey] = {}
        self.price_versions: dict[str, tuple[Decimal, int]] = {
            sku: (price, 0) for sku, price in (prices or {}).items()
        }
        self.published: list[Envelope[Payload]] = []

    async def publish(self, events: Sequence[Envelope[Payload]]) -> None:
        self.published += events

    def _orders(self) -> list[Order]:
        return [o for o in (Order.replay(s) for s in self.streams.values()) if o is not None]

    async def load(self, order_id: str, as_of: datetime | None = None) -> Order | None:
        events = self.streams.get(order_id, [])
        return Order.replay(e for e in events if as_of is None or e.occurred_at <= as_of)

    async def events(self, order_id: str) -> list[dict[str, object]]:
        return [
            {"version": v, "type": e.name, "occurred_at": e.occurred_at.isoformat()}
            for v, e in enumerate(self.streams.get(order_id, []), start=1)
        ]

    async def append(
        self, order: Order | None, event: OrderEvent, trace_headers: dict[str, str] | None = None
    ) -> Order:
        new_state = Order.start(event) if order is None else order.apply(event)
        stream = self.streams.setdefault(new_state.order_id, [])
        if len(stream) >= new_state.version:
            raise ConcurrencyConflictError(
                f"order {new_state.order_id} moved past version {new_state.version - 1}"
            )
        assert len(stream) == new_state.version - 1, "an append may not leave a gap"
        stream.append(event)
        return new_state

    async def overdue(self, now: datetime, limit: int) -> list[OverdueOrder]:
        pending = [
            o for o in self._orders() if o.status is OrderStatus.PENDING and o.deadline_at < now
        ]
        by_deadline = sorted(pending, key=lambda o: o.deadline_at)
        return [OverdueOrder(o.order_id, {}) for o in by_deadline][:limit]

    async def list_orders(
        self, status: str | None, after: str | None, limit: int
    ) -> list[OrderListing]:
        rows = sorted(
            (o for o in self._orders() if status is None or o.status.value == status),
            key=lambda o: o.order_id,
        )
        return [
            OrderListing(o.order_id, o.user_id, o.status.value, o.version, o.updated_at)
            for o in rows
            if after is None or o.order_id > after
        ][:limit]

    async def pending_counts(self, now: datetime) -> tuple[int, int]:
        pending = [o for o in self._orders() if o.status is OrderStatus.PENDING]
        return len(pending), sum(1 for o in pending if o.deadline_at < now)

    async def count_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self._orders():
            counts[order.status.value] = counts.get(order.status.value, 0) + 1
        return counts

    async def prices(self, skus: Sequence[str]) -> dict[str, Decimal]:
        return {sku: self.price_versions[sku][0] for sku in skus if sku in self.price_versions}

    async def set_price(self, sku: str, price: Decimal) -> None:
        _, version = self.price_versions.get(sku, (price, 0))
        self.price_versions[sku] = (price, version)

    async def learn_price(self, sku: str, price: Decimal, version: int) -> bool:
        known = self.price_versions.get(sku)
        if known is not None and known[1] >= version:
            return False
        self.price_versions[sku] = (price, version)
        return True

    async def claim_key(self, key: str, request_hash: str, order_id: str) -> StoredKey | None:
        if key in self.keys:
            return self.keys[key]
        self.keys[key] = StoredKey(request_hash, order_id, 1)
        return None


def order_unit(store: FakeOrderStore) -> FakeUnitOfWork[FakeOrderStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is an OrderStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeOrderStore], UnitOfWork[OrderStore]] = order_unit

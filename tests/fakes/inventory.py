"""Inventory's store in memory, with the same all-or-nothing ``take`` and the same
``record`` upsert (a later record keeps the first record's items)."""

from __future__ import annotations

from collections.abc import Callable

from fakes import FakeUnitOfWork
from inventory.domain import ReservationStatus
from inventory.ports import InventoryStore, Reservation, StockLevel
from polysaga.unit_of_work import UnitOfWork


class FakeInventoryStore:
    def __init__(self, stock: dict[str, int] | None = None) -> None:
        self.available = dict(stock or {})
        self.reserved = dict.fromkeys(self.available, 0)
        self.reservations: dict[str, Reservation] = {}
        self.calls: list[str] = []

    async def lock_order(self, order_id: str) -> None:
        self.calls.append(f"lock {order_id}")

    async def reservation(self, order_id: str) -> Reservation | None:
        self.calls.append(f"read {order_id}")
        return self.reservations.get(order_id)

    async def take(self, quantities: dict[str, int]) -> bool:
        if any(self.available.get(sku, -1) < q for sku, q in quantities.items()):
            return False
        for sku, q in quantities.items():
            self.available[sku] -= q
            self.reserved[sku] += q
        return True

    async def give_back(self, quantities: dict[str, int]) -> None:
        for sku, q in quantities.items():
            if sku in self.available:
                self.available[sku] += q
                self.reserved[sku] -= q

    async def record(
        self,
        order_id: str,
        status: ReservationStatus,
        quantities: dict[str, int],
        reason: str | None = None,
    ) -> None:
        earlier = self.reservations.get(order_id)
        if earlier is None:
            self.reservations[order_id] = Reservation(order_id, status, dict(quantities), reason)
        else:
            self.reservations[order_id] = Reservation(
                order_id, status, earlier.items, reason or earlier.reason
            )

    async def missing_skus(self, skus: list[str]) -> list[str]:
        return [sku for sku in skus if sku not in self.available]

    async def set_available(self, sku: str, available: int) -> StockLevel:
        self.available[sku] = available
        self.reserved.setdefault(sku, 0)
        return StockLevel(sku, available, self.reserved[sku])

    async def level(self, sku: str) -> StockLevel | None:
        if sku not in self.available:
            return None
        return StockLevel(sku, self.available[sku], self.reserved[sku])


def inventory_unit(store: FakeInventoryStore) -> FakeUnitOfWork[FakeInventoryStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is an InventoryStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeInventoryStore], UnitOfWork[InventoryStore]] = inventory_unit

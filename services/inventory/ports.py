"""What inventory's application needs from its store, as the service owns it: stock per
SKU (taken all or nothing), and one reservation record per order. ``inventory.adapters``
implements it on PostgreSQL, the unit tests in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inventory.domain import ReservationStatus


@dataclass(frozen=True)
class StockLevel:
    sku: str
    available: int
    reserved: int


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: ReservationStatus
    items: dict[str, int]
    reason: str | None


class InventoryStore(Protocol):
    async def lock_order(self, order_id: str) -> None:
        """Serialise everything done for one order until this unit of work ends."""
        ...

    async def reservation(self, order_id: str) -> Reservation | None: ...

    async def take(self, quantities: dict[str, int]) -> bool:
        """Hold every SKU's quantity, or change nothing and return False."""
        ...

    async def give_back(self, quantities: dict[str, int]) -> None: ...

    async def record(
        self,
        order_id: str,
        status: ReservationStatus,
        quantities: dict[str, int],
        reason: str | None = None,
    ) -> None:
        """Create the order's reservation record, or move it to ``status`` (a later record
        keeps the first one's items)."""
        ...

    async def missing_skus(self, skus: list[str]) -> list[str]:
        """Those of ``skus`` with no stock record at all."""
        ...

    async def set_available(self, sku: str, available: int) -> StockLevel: ...

    async def level(self, sku: str) -> StockLevel | None: ...

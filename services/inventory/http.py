"""Inventory's HTTP API."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import get, put
from litestar.params import FromPath, JSONBody

from inventory import application
from inventory.application import NoReservationError, UnknownSkuError
from inventory.ports import InventoryStore
from polysaga.api_types import Sku, StockLevel, StrictStruct
from polysaga.app import UnitOfWorkParam
from polysaga.auth import require_operator
from polysaga.problems import ProblemMap, ProblemType, validated


class StockIn(StrictStruct):
    available: StockLevel


class StockOut(msgspec.Struct):
    sku: str
    available: int
    reserved: int


class ReservationOut(msgspec.Struct):
    order_id: str
    status: str
    items: dict[str, int]
    reason: str | None


# Inventory's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    UnknownSkuError: ProblemType(
        404, "Unknown SKU", "unknown-sku", detail="no stock record for {exc}"
    ),
    NoReservationError: ProblemType(
        404, "No reservation", detail="inventory has seen no order {exc}"
    ),
}


@put(
    "/stock/{sku:str}",
    summary="Set how many units of a SKU are available (operator)",
    guards=[require_operator],
)
async def set_stock(
    sku: FromPath[str], data: JSONBody[StockIn], uow: UnitOfWorkParam[InventoryStore]
) -> StockOut:
    level = await application.set_stock(uow, validated(sku, Sku, "Bad SKU"), data.available)
    return StockOut(level.sku, level.available, level.reserved)


@get("/stock/{sku:str}", summary="Stock of a SKU")
async def get_stock(sku: FromPath[str], uow: UnitOfWorkParam[InventoryStore]) -> StockOut:
    level = await application.stock_of(uow, validated(sku, Sku, "Bad SKU"))
    return StockOut(level.sku, level.available, level.reserved)


@get("/reservations/{order_id:uuid}", summary="What inventory holds for an order")
async def get_reservation(
    order_id: FromPath[UUID], uow: UnitOfWorkParam[InventoryStore]
) -> ReservationOut:
    reservation = await application.reservation_of(uow, str(order_id))
    return ReservationOut(
        reservation.order_id, reservation.status.value, reservation.items, reservation.reason
    )


ROUTES = [set_stock, get_stock, get_reservation]

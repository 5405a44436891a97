"""Inventory's HTTP API."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from inventory.adapters import InventoryStore
from polysaga.api_types import Sku, StockLevel, StrictStruct
from polysaga.auth import require_operator
from polysaga.problems import Problem
from polysaga.runtime import ServiceRuntime


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


def _sku(sku: str) -> str:
    try:
        return msgspec.convert(sku, Sku)
    except msgspec.ValidationError as exc:
        raise Problem(400, "Bad SKU", str(exc)) from exc


@put(
    "/stock/{sku:str}",
    summary="Set how many units of a SKU are available (operator)",
    guards=[require_operator],
)
async def set_stock(
    sku: FromPath[str], data: JSONBody[StockIn], runtime: NamedDependency[ServiceRuntime]
) -> StockOut:
    async with runtime.transaction() as conn:
        level = await InventoryStore(conn).set_available(_sku(sku), data.available)
    return StockOut(level.sku, level.available, level.reserved)


@get("/stock/{sku:str}", summary="Stock of a SKU")
async def get_stock(sku: FromPath[str], runtime: NamedDependency[ServiceRuntime]) -> StockOut:
    async with runtime.engine.connect() as conn:
        level = await InventoryStore(conn).level(_sku(sku))
    if level is None:
        raise Problem(404, "Unknown SKU", f"no stock record for {sku}", slug="unknown-sku")
    return StockOut(level.sku, level.available, level.reserved)


@get("/reservations/{order_id:uuid}", summary="What inventory holds for an order")
async def get_reservation(
    order_id: FromPath[UUID], runtime: NamedDependency[ServiceRuntime]
) -> ReservationOut:
    async with runtime.engine.connect() as conn:
        reservation = await InventoryStore(conn).reservation(str(order_id))
    if reservation is None:
        raise Problem(404, "No reservation", f"inventory has seen no order {order_id}")
    return ReservationOut(
        reservation.order_id, reservation.status.value, reservation.items, reservation.reason
    )


ROUTES = [set_stock, get_stock, get_reservation]

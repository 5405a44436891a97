"""The sales projection's HTTP API: figures per product, customer and day (zeros where
nothing was sold), and the admin endpoints that rebuild it and digest a generation."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from polysaga.api_types import Identifier, Sku
from polysaga.money import format_money
from polysaga.problems import Problem, problem_responses
from polysaga.runtime import ServiceRuntime
from sales.adapters import SalesStore
from sales.rebuild import RebuildResult, RebuildRunningError, generation_digest, rebuild

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class ProductOut(msgspec.Struct):
    sku: str
    units: int
    revenue: str


class CustomerOut(msgspec.Struct):
    user_id: str
    orders: int
    spent: str


class DayOut(msgspec.Struct):
    day: str
    orders: int
    units: int
    revenue: str


class DigestOut(msgspec.Struct):
    generation: int
    count: int  # orders counted
    digest: str


def _checked(value: str, kind: object, what: str) -> str:
    try:
        return str(msgspec.convert(value, kind))
    except msgspec.ValidationError as exc:
        raise Problem(400, f"Bad {what}", str(exc)) from exc


@get("/sales/products/{sku:str}", summary="Units and revenue of a product over confirmed orders")
async def product_sales(sku: FromPath[str], runtime: NamedDependency[ServiceRuntime]) -> ProductOut:
    async with runtime.engine.connect() as conn:
        sales = await SalesStore(conn).product(_checked(sku, Sku, "SKU"))
    return ProductOut(sales.sku, sales.units, format_money(sales.revenue))


@get("/sales/customers/{user_id:str}", summary="A customer's confirmed orders and spending")
async def customer_sales(
    user_id: FromPath[str], runtime: NamedDependency[ServiceRuntime]
) -> CustomerOut:
    async with runtime.engine.connect() as conn:
        sales = await SalesStore(conn).customer(_checked(user_id, Identifier, "user id"))
    return CustomerOut(sales.user_id, sales.orders, format_money(sales.spent))


@get("/sales/days/{day:str}", summary="Orders confirmed on a day (UTC), their units and revenue")
async def day_sales(day: FromPath[str], runtime: NamedDependency[ServiceRuntime]) -> DayOut:
    try:
        if len(day) != 10:
            raise ValueError(day)
        parsed = date.fromisoformat(day)
    except ValueError as exc:
        raise Problem(400, "Bad day", f"{day!r} is not a date (YYYY-MM-DD)") from exc
    async with runtime.engine.connect() as conn:
        sales = await SalesStore(conn).day(parsed)
    return DayOut(sales.day.isoformat(), sales.orders, sales.units, format_money(sales.revenue))


@post(
    "/admin/rebuild",
    status_code=200,
    summary="Rebuild the projection from event history",
    responses=problem_responses(409),
)
async def rebuild_sales(runtime: NamedDependency[ServiceRuntime]) -> RebuildResult:
    try:
        return await rebuild(runtime.engine, runtime.js)
    except RebuildRunningError as exc:
        raise Problem(409, "Rebuild in progress", str(exc)) from exc


@get(
    "/admin/digest",
    summary="A digest of a generation's figures (default: the live one)",
    responses=problem_responses(404),
)
async def sales_digest(
    runtime: NamedDependency[ServiceRuntime],
    generation_number: Annotated[int | None, QueryParameter(name="generation", ge=1)] = None,
) -> DigestOut:
    async with runtime.engine.connect() as conn:
        store = SalesStore(conn, generation_number)
        if generation_number is not None and generation_number not in await store.generations():
            raise Problem(404, "Unknown generation", f"no generation {generation_number} is stored")
        number = generation_number or await store.live_generation()
        orders = await store.orders_counted()
    return DigestOut(number, orders, await generation_digest(runtime.engine, number))


ROUTES = [product_sales, customer_sales, day_sales, rebuild_sales, sales_digest]

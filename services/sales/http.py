"""The sales projection's HTTP API: figures per product, customer and day (zeros where
nothing was sold), and the admin endpoints that rebuild it and digest a generation."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from polysaga.api_types import Identifier, Sku
from polysaga.app import UnitOfWorkParam
from polysaga.money import format_money
from polysaga.problems import ProblemMap, ProblemType, problem_responses, validated
from polysaga.runtime import ServiceRuntime
from sales import application
from sales.ports import SalesLedger
from sales.rebuild import (
    RebuildResult,
    RebuildRunningError,
    UnknownGenerationError,
    digest_of,
    rebuild,
)

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


# The projection's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    application.BadDayError: ProblemType(
        400, "Bad day", "bad-day", detail="{exc!s} is not a date (YYYY-MM-DD)"
    ),
    RebuildRunningError: ProblemType(409, "Rebuild in progress", "rebuild-in-progress"),
    UnknownGenerationError: ProblemType(404, "Unknown generation", "unknown-generation"),
}


@get("/sales/products/{sku:str}", summary="Units and revenue of a product over confirmed orders")
async def product_sales(sku: FromPath[str], uow: UnitOfWorkParam[SalesLedger]) -> ProductOut:
    sales = await application.product_sales(uow, validated(sku, Sku, "Bad SKU"))
    return ProductOut(sales.sku, sales.units, format_money(sales.revenue))


@get("/sales/customers/{user_id:str}", summary="A customer's confirmed orders and spending")
async def customer_sales(user_id: FromPath[str], uow: UnitOfWorkParam[SalesLedger]) -> CustomerOut:
    sales = await application.customer_sales(uow, validated(user_id, Identifier, "Bad user id"))
    return CustomerOut(sales.user_id, sales.orders, format_money(sales.spent))


@get("/sales/days/{day:str}", summary="Orders confirmed on a day (UTC), their units and revenue")
async def day_sales(day: FromPath[str], uow: UnitOfWorkParam[SalesLedger]) -> DayOut:
    sales = await application.day_sales(uow, application.parse_day(day))
    return DayOut(sales.day.isoformat(), sales.orders, sales.units, format_money(sales.revenue))


@post(
    "/admin/rebuild",
    status_code=200,
    summary="Rebuild the projection from event history",
    responses=problem_responses(409),
)
async def rebuild_sales(runtime: NamedDependency[ServiceRuntime]) -> RebuildResult:
    return await rebuild(runtime.engine, runtime.js)


@get(
    "/admin/digest",
    summary="A digest of a generation's figures (default: the live one)",
    responses=problem_responses(404),
)
async def sales_digest(
    runtime: NamedDependency[ServiceRuntime],
    generation_number: Annotated[int | None, QueryParameter(name="generation", ge=1)] = None,
) -> DigestOut:
    number, orders, digest = await digest_of(runtime.engine, generation_number)
    return DigestOut(number, orders, digest)


ROUTES = [product_sales, customer_sales, day_sales, rebuild_sales, sales_digest]

"""The order service's HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from order import application
from order.application import (
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    OrderStateConflictError,
    PlaceOrder,
    PriceNotFoundError,
)
from order.domain import Order, OrderStatus, OrderTooLargeError, UnknownProductError
from order.ports import OrderStore
from polysaga.api_types import UUID_PATTERN, Identifier, Quantity, Sku, StrictStruct, whole
from polysaga.app import UnitOfWorkParam
from polysaga.auth import require_operator
from polysaga.events.payloads import TrackingNumber
from polysaga.events.saga_style import SagaStyle
from polysaga.money import MoneyText, format_money, parse_money
from polysaga.problems import Problem, ProblemMap, ProblemType, problem_responses, validated
from polysaga.runtime import ServiceRuntime


class OrderItemIn(StrictStruct):
    sku: Sku
    quantity: Quantity


class PlaceOrderIn(StrictStruct):
    user_id: Identifier
    items: Annotated[list[OrderItemIn], msgspec.Meta(min_length=1, max_length=100)]
    # Who runs the saga: the participants reacting to each other's events, or the
    # orchestrator (its state: GET /sagas/{order_id} on the orchestrator).
    saga: Literal["choreography", "orchestration"] = "choreography"


class PlacedOut(msgspec.Struct):
    order_id: str
    version: int


class OrderItemOut(msgspec.Struct):
    sku: str
    quantity: int
    unit_price: str


class OrderOut(msgspec.Struct):
    order_id: str
    user_id: str
    status: str
    items: list[OrderItemOut]
    total: str
    version: int
    cancel_reason: str | None
    placed_at: datetime
    updated_at: datetime
    saga: str
    tracking_number: str | None
    paid_at: datetime | None


class OrderListItem(msgspec.Struct):
    order_id: str
    user_id: str
    status: str
    version: int
    updated_at: datetime


class OrderPage(msgspec.Struct):
    orders: list[OrderListItem]
    next_after: str | None


class PriceIn(StrictStruct):
    price: MoneyText


class ShipmentIn(StrictStruct):
    tracking_number: TrackingNumber


class PriceOut(msgspec.Struct):
    sku: str
    price: str


def _order_out(order: Order) -> OrderOut:
    return OrderOut(
        order_id=order.order_id,
        user_id=order.user_id,
        status=order.status.value,
        items=[OrderItemOut(i.sku, i.quantity, format_money(i.unit_price)) for i in order.items],
        total=format_money(order.total),
        version=order.version,
        cancel_reason=order.cancel_reason,
        placed_at=order.placed_at,
        updated_at=order.updated_at,
        saga=order.saga.value,
        tracking_number=order.tracking_number,
        paid_at=order.paid_at,
    )


# The order service's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    UnknownProductError: ProblemType(422, "Unknown product", "unknown-product"),
    OrderTooLargeError: ProblemType(422, "Order too large", "order-too-large"),
    IdempotencyKeyReusedError: ProblemType(
        422,
        "Idempotency key reused",
        "idempotency-key-reused",
        detail="this Idempotency-Key was used with a different request",
    ),
    OrderNotFoundError: ProblemType(404, "Order not found"),
    OrderStateConflictError: ProblemType(409, "Order state conflict", "order-state-conflict"),
    PriceNotFoundError: ProblemType(
        404, "Unknown product", "unknown-product", "no price for {exc}"
    ),
}


@post(
    "/orders",
    status_code=HTTP_202_ACCEPTED,
    summary="Place an order (starts a saga)",
    responses=problem_responses(422),
)
async def place(
    data: JSONBody[PlaceOrderIn],
    runtime: NamedDependency[ServiceRuntime],
    uow: UnitOfWorkParam[OrderStore],
    idempotency_key: Annotated[
        str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> PlacedOut:
    command = PlaceOrder(
        user_id=data.user_id,
        items=tuple((item.sku, item.quantity) for item in data.items),
        idempotency_key=idempotency_key,
        saga=SagaStyle(data.saga),
    )
    placed = await application.place_order(
        uow, command, now=datetime.now(UTC), deadline_s=runtime.settings.order_deadline_s
    )
    return PlacedOut(placed.order_id, placed.version)


@get("/orders/{order_id:uuid}", summary="An order's state, now or as of a past time")
async def get_order(
    order_id: FromPath[UUID],
    uow: UnitOfWorkParam[OrderStore],
    as_of: FromQuery[datetime | None] = None,
) -> OrderOut:
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(400, "Bad as_of", "as_of must be an RFC 3339 time with an offset")
    return _order_out(await application.get_order(uow, str(order_id), as_of=as_of))


@post(
    "/orders/{order_id:uuid}/shipment",
    status_code=200,
    summary="Ship a confirmed order with its tracking number (operator)",
    guards=[require_operator],
    responses=problem_responses(404, 409),
)
async def ship(
    order_id: FromPath[UUID], data: JSONBody[ShipmentIn], uow: UnitOfWorkParam[OrderStore]
) -> OrderOut:
    shipped = await application.ship_order(
        uow, str(order_id), data.tracking_number, now=datetime.now(UTC)
    )
    return _order_out(shipped)


@post(
    "/orders/{order_id:uuid}/delivery",
    status_code=200,
    summary="Record that a shipped order was delivered (operator)",
    guards=[require_operator],
    responses=problem_responses(404, 409),
)
async def deliver(order_id: FromPath[UUID], uow: UnitOfWorkParam[OrderStore]) -> OrderOut:
    return _order_out(await application.deliver_order(uow, str(order_id), now=datetime.now(UTC)))


@get("/orders/{order_id:uuid}/events", summary="An order's event stream")
async def get_order_events(
    order_id: FromPath[UUID], uow: UnitOfWorkParam[OrderStore]
) -> list[dict[str, Any]]:
    return await application.order_events(uow, str(order_id))


@get("/orders", summary="Orders by id, paged")
async def list_orders(
    uow: UnitOfWorkParam[OrderStore],
    status: Annotated[
        str | None, Parameter(pattern=whole("|".join(s.value for s in OrderStatus)))
    ] = None,
    after: Annotated[str | None, Parameter(pattern=UUID_PATTERN)] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> OrderPage:
    rows = await application.list_orders(uow, status, after, limit)
    items = [OrderListItem(r.order_id, r.user_id, r.status, r.version, r.updated_at) for r in rows]
    return OrderPage(items, items[-1].order_id if len(items) == limit else None)


@get("/stats", summary="How many orders are in each status")
async def order_stats(uow: UnitOfWorkParam[OrderStore]) -> dict[str, int]:
    return await application.count_by_status(uow)


@put(
    "/prices/{sku:str}",
    summary="Set a product's price in the local replica (operator)",
    guards=[require_operator],
)
async def set_price(
    sku: FromPath[str], data: JSONBody[PriceIn], uow: UnitOfWorkParam[OrderStore]
) -> PriceOut:
    price = await application.set_price(
        uow, validated(sku, Sku, "Bad SKU"), parse_money(data.price)
    )
    return PriceOut(sku, format_money(price))


@get("/prices/{sku:str}", summary="A product's price in the local replica")
async def get_price(sku: FromPath[str], uow: UnitOfWorkParam[OrderStore]) -> PriceOut:
    price = await application.get_price(uow, validated(sku, Sku, "Bad SKU"))
    return PriceOut(sku, format_money(price))


ROUTES = [
    place,
    get_order,
    ship,
    deliver,
    get_order_events,
    list_orders,
    order_stats,
    set_price,
    get_price,
]

"""The gateway's HTTP API, the public edge: every route needs a bearer JWT (``sub`` is the
customer; the operator role sees everything). Parameters are checked here, before any
other service is asked.

Forwarded answers keep their status, body and Retry-After, except a 5xx other than 503,
which becomes a 502 problem (the fault is upstream, not the gateway's); a service that
cannot be reached at all is a 503 problem with Retry-After. The routes let the
application's errors through; ``problems`` says what each one is over HTTP."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from gateway import application
from gateway.adapters import UpstreamClient
from gateway.ports import UpstreamReply, UpstreamUnavailableError
from polysaga.api_types import ID_PATTERN, UUID_PATTERN, Quantity, Sku, StrictStruct
from polysaga.auth import Principal, forbidden
from polysaga.auth.schemes import BEARER_JWT_SCHEME
from polysaga.problems import ProblemMap, ProblemType, problem_responses
from polysaga.runtime import ServiceRuntime

OrderId = Annotated[str, Parameter(pattern=UUID_PATTERN, description="An order id (UUID)")]
UserId = Annotated[str, Parameter(pattern=ID_PATTERN, description="A user id")]
BEARER: list[dict[str, list[str]]] = [{BEARER_JWT_SCHEME: []}]
_USER_ID = re.compile(ID_PATTERN)


class OrderItemIn(StrictStruct):
    sku: Sku
    quantity: Quantity


class CustomerOrderIn(StrictStruct):
    """What a customer sends: the items; who orders is the token's subject."""

    items: Annotated[list[OrderItemIn], msgspec.Meta(min_length=1, max_length=100)]


class OrderDetailsOut(msgspec.Struct):
    order: dict[str, Any]
    user: dict[str, Any] | None
    products: dict[str, dict[str, Any] | None]
    missing: list[str]
    complete: bool


def problems(retry_after_s: int) -> ProblemMap:
    """The gateway's errors as problems; a 503 asks to retry after ``retry_after_s`` (the
    upstream timeout: by then a slow service has had the time to answer)."""
    unavailable = ProblemType(
        503, "Dependency unavailable", "dependency-unavailable", retry_after_s=retry_after_s
    )
    return {
        # One answer for an unknown order and for someone else's: nothing tells them apart.
        application.OrderNotFoundError: ProblemType(
            404, "Order not found", "order-not-found", detail="no order {exc}"
        ),
        application.OrderUnavailableError: unavailable,
        UpstreamUnavailableError: unavailable,
        application.BadUpstreamReplyError: ProblemType(502, "Bad gateway", "bad-gateway"),
    }


def _passed_through(reply: UpstreamReply, service: str = "order-view") -> Response[bytes]:
    if reply.status >= 500 and reply.status != 503:
        raise application.BadUpstreamReplyError(f"{service} answered {reply.status}")
    headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
    return Response(
        content=reply.content,
        status_code=reply.status,
        media_type=reply.content_type,
        headers=headers,
    )


# The read model's answers pass through unchanged; their shape is order-view's to document.
_PASSED_THROUGH = {
    200: ResponseSpec(data_container=dict[str, Any], description="order-view's answer, as is"),
    **problem_responses(401, 403, 502, 503),
}


@get(
    "/orders/{order_id:str}/details",
    responses=problem_responses(401, 403, 502, 503),
    security=BEARER,
    summary="An order with its user and products; parts that cannot be fetched are listed"
    " in `missing`",
)
async def order_details(
    order_id: OrderId,
    upstream: NamedDependency[UpstreamClient],
    principal: NamedDependency[Principal],
) -> OrderDetailsOut:
    details = await application.order_details(upstream, order_id.lower(), principal)
    return OrderDetailsOut(
        details.order, details.user, details.products, details.missing, details.complete
    )


@get(
    "/orders/{order_id:str}/summary",
    summary="The order's summary from the order-view read model",
    responses=_PASSED_THROUGH,
    security=BEARER,
)
async def order_summary(
    order_id: OrderId,
    upstream: NamedDependency[UpstreamClient],
    runtime: NamedDependency[ServiceRuntime],
    principal: NamedDependency[Principal],
    min_version: Annotated[
        int | None,
        Parameter(ge=1, le=1_000_000, description="Wait until the view has this version"),
    ] = None,
) -> Response[bytes]:
    params: dict[str, str | int] = {}
    timeout_s = upstream.timeout_s
    if min_version is not None:
        params["min_version"] = min_version
        timeout_s += runtime.settings.view_wait_max_s  # order-view may wait that long first
    reply = await application.order_summary(
        upstream, order_id.lower(), params, timeout_s=timeout_s, viewer=principal
    )
    return _passed_through(reply)


@get(
    "/users/{user_id:str}/orders",
    summary="A user's orders from the order-view read model (a customer: their own only)",
    responses=_PASSED_THROUGH,
    security=BEARER,
)
async def user_orders(
    user_id: UserId,
    upstream: NamedDependency[UpstreamClient],
    principal: NamedDependency[Principal],
    limit: Annotated[int | None, Parameter(ge=1, le=100)] = None,
    offset: Annotated[int | None, Parameter(ge=0, le=100_000)] = None,
) -> Response[bytes]:
    if not principal.may_act_for(user_id):
        raise forbidden("a customer may list only their own orders")
    # The read model's own bounds; its own defaults apply to what is not given.
    params = {
        name: value for name, value in (("limit", limit), ("offset", offset)) if value is not None
    }
    reply = await application.read_model(
        upstream, application.user_orders_path(user_id), params, timeout_s=upstream.timeout_s
    )
    return _passed_through(reply)


@post(
    "/orders",
    status_code=HTTP_202_ACCEPTED,
    summary="Place an order as the token's user (starts a saga); the order service's answer",
    responses={
        202: ResponseSpec(
            data_container=dict[str, Any], description="order's answer: order_id and version"
        ),
        **problem_responses(401, 403, 422, 502, 503),
    },
    security=BEARER,
)
async def place_order(
    data: JSONBody[CustomerOrderIn],
    upstream: NamedDependency[UpstreamClient],
    principal: NamedDependency[Principal],
    idempotency_key: Annotated[
        str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> Response[bytes]:
    if not _USER_ID.match(principal.user_id):
        raise forbidden("the token's subject is not a user id this system can hold")
    items = [{"sku": item.sku, "quantity": item.quantity} for item in data.items]
    reply = await application.place_order(upstream, principal, items, idempotency_key)
    return _passed_through(reply, "order")


ROUTES = [order_details, order_summary, user_orders, place_order]

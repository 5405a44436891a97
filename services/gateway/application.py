"""The gateway's use cases: an order's details composed from order, user and catalog; the
order-view read model's endpoints forwarded; a customer's order placed with the order
service. Every one is on behalf of a verified caller, who sees only their own orders (an
operator sees all): another customer's order is "not found", exactly as an unknown one.

Details: the order comes first (without it there is nothing to compose: 404 if unknown,
503 if the order service cannot answer), then the user and every product concurrently.
Each of those that times out, is refused or answers 5xx (or anything but 200) becomes a
gap named in ``missing``, never an error, so the answer arrives within about two timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.domain import (
    OrderDetails,
    compose_details,
    may_see,
    scoped_idempotency_key,
    skus_of,
    user_id_of,
)
from gateway.ports import Upstream, UpstreamReply, UpstreamUnavailableError
from polysaga.auth.principal import Principal

log = logging.getLogger(__name__)

ORDER = "order"
USER = "user"
CATALOG = "catalog"
ORDER_VIEW = "order-view"


class OrderNotFoundError(LookupError):
    pass


class OrderUnavailableError(Exception):
    """The order service cannot answer now (down, slow, 5xx): worth retrying later."""


class BadUpstreamReplyError(Exception):
    """A service answered something the gateway cannot use (a contract mismatch, or a 5xx
    other than 503: the fault is upstream)."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _sees(viewer: Principal, owner_id: object) -> bool:
    return may_see(owner_id, viewer_id=viewer.user_id, operator=viewer.operator)


async def order_details(upstream: Upstream, order_id: str, viewer: Principal) -> OrderDetails:
    order = await _order(upstream, order_id)
    user_id = user_id_of(order)
    if not _sees(viewer, user_id):
        raise OrderNotFoundError(order_id)  # before anything else is asked for it
    skus = skus_of(order)
    user, *products = await asyncio.gather(
        _part(upstream, USER, f"/users/{_segment(user_id)}") if user_id else _nothing(),
        *(_part(upstream, CATALOG, f"/products/{_segment(sku)}") for sku in skus),
    )
    return compose_details(order, user, dict(zip(skus, products, strict=True)))


async def read_model(
    upstream: Upstream,
    path: str,
    params: Mapping[str, str | int],
    *,
    timeout_s: float,
) -> UpstreamReply:
    """Ask order-view; raises UpstreamUnavailableError when it cannot answer."""
    return await upstream.get(ORDER_VIEW, path, params, timeout_s=timeout_s)


async def order_summary(
    upstream: Upstream,
    order_id: str,
    params: Mapping[str, str | int],
    *,
    timeout_s: float,
    viewer: Principal,
) -> UpstreamReply:
    """The read model's summary of an order the viewer may see; OrderNotFoundError for an
    order the view does not hold or the viewer may not see (the same answer)."""
    reply = await read_model(upstream, summary_path(order_id), params, timeout_s=timeout_s)
    if reply.status == 404:
        raise OrderNotFoundError(order_id)
    if reply.status == 200 and not viewer.operator:
        summary = reply.json_object()
        if summary is None or not _sees(viewer, summary.get("user_id")):
            raise OrderNotFoundError(order_id)
    return reply


async def place_order(
    upstream: Upstream,
    customer: Principal,
    items: list[dict[str, Any]],
    idempotency_key: str | None,
) -> UpstreamReply:
    """Forward a customer's order to the order service, as that customer (never as a user
    the body names). Raises OrderUnavailableError when the order service cannot answer."""
    headers = (
        {"Idempotency-Key": scoped_idempotency_key(customer.user_id, idempotency_key)}
        if idempotency_key is not None
        else {}
    )
    body = {"user_id": customer.user_id, "items": items}
    try:
        return await upstream.request("POST", ORDER, "/orders", json=body, headers=headers)
    except UpstreamUnavailableError as exc:
        raise OrderUnavailableError(f"{exc}; retry with the same Idempotency-Key") from exc


def summary_path(order_id: str) -> str:
    return f"/orders/{_segment(order_id)}/summary"


def user_orders_path(user_id: str) -> str:
    return f"/users/{_segment(user_id)}/orders"


async def _order(upstream: Upstream, order_id: str) -> dict[str, Any]:
    try:
        reply = await upstream.get(ORDER, f"/orders/{_segment(order_id)}")
    except UpstreamUnavailableError as exc:
        raise OrderUnavailableError(str(exc)) from exc
    if reply.status == 404:
        raise OrderNotFoundError(order_id)
    if reply.status >= 500:
        raise OrderUnavailableError(f"order service answered {reply.status}")
    order = reply.json_object() if reply.status == 200 else None
    if order is None:
        raise BadUpstreamReplyError(f"order service answered {reply.status} without an order")
    return order


async def _part(upstream: Upstream, service: str, path: str) -> dict[str, Any] | None:
    try:
        reply = await upstream.get(service, path)
    except UpstreamUnavailableError as exc:
        log.warning("composition part missing: %s", exc)
        return None
    document = reply.json_object() if reply.status == 200 else None
    if document is None:
        log.warning("composition part missing: %s %s answered %s", service, path, reply.status)
    return document


async def _nothing() -> None:
    return None

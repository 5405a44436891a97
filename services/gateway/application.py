"""The gateway's queries: an order's details composed from order, user and catalog, and
the order-view read model's endpoints forwarded as they are.

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

from gateway.adapters import UpstreamClient, UpstreamReply, UpstreamUnavailableError
from gateway.domain import OrderDetails, compose_details, skus_of, user_id_of

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
    """A service answered something the gateway cannot use (a contract mismatch)."""


def _segment(value: str) -> str:
    return quote(value, safe="")


async def order_details(upstream: UpstreamClient, order_id: str) -> OrderDetails:
    order = await _order(upstream, order_id)
    user_id = user_id_of(order)
    skus = skus_of(order)
    user, *products = await asyncio.gather(
        _part(upstream, USER, f"/users/{_segment(user_id)}") if user_id else _nothing(),
        *(_part(upstream, CATALOG, f"/products/{_segment(sku)}") for sku in skus),
    )
    return compose_details(order, user, dict(zip(skus, products, strict=True)))


async def read_model(
    upstream: UpstreamClient,
    path: str,
    params: Mapping[str, str | int],
    *,
    timeout_s: float,
) -> UpstreamReply:
    """Ask order-view; raises UpstreamUnavailableError when it cannot answer."""
    return await upstream.get(ORDER_VIEW, path, params, timeout_s=timeout_s)


def summary_path(order_id: str) -> str:
    return f"/orders/{_segment(order_id)}/summary"


def user_orders_path(user_id: str) -> str:
    return f"/users/{_segment(user_id)}/orders"


async def _order(upstream: UpstreamClient, order_id: str) -> dict[str, Any]:
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


async def _part(upstream: UpstreamClient, service: str, path: str) -> dict[str, Any] | None:
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

"""The gateway's composition, without servers: the document made from partial results, and
how the order's and the parts' answers map to 404, 503, 502 or a gap in ``missing``; who
may see an order, and customers' idempotency keys kept apart."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from fakes.gateway import ScriptedUpstream
from gateway import application
from gateway.domain import compose_details, may_see, scoped_idempotency_key, skus_of
from gateway.ports import UpstreamUnavailableError
from polysaga.auth import Principal

ORDER_ID = "6f1c2a52-6a3b-4d7e-9a43-0d5f7c1e2b3a"
ORDER = {
    "order_id": ORDER_ID,
    "user_id": "user-1",
    "status": "CONFIRMED",
    "items": [
        {"sku": "SKU-1", "quantity": 1, "unit_price": "1.00"},
        {"sku": "SKU-2", "quantity": 2, "unit_price": "2.00"},
        {"sku": "SKU-1", "quantity": 3, "unit_price": "1.00"},
    ],
}
USER = {"user_id": "user-1", "name": "Alice", "email": "alice@example.org"}
SKU1 = {"sku": "SKU-1", "name": "One"}
SKU2 = {"sku": "SKU-2", "name": "Two"}
OPERATOR = Principal("ops-1", frozenset({"operator"}), operator=True)


def test_a_complete_document() -> None:
    details = compose_details(ORDER, USER, {"SKU-1": SKU1, "SKU-2": SKU2})
    assert details.order == ORDER and details.user == USER
    assert details.products == {"SKU-1": SKU1, "SKU-2": SKU2}
    assert details.missing == [] and details.complete


def test_missing_parts_are_null_and_named() -> None:
    details = compose_details(ORDER, None, {"SKU-1": SKU1, "SKU-2": None})
    assert details.user is None
    assert details.products == {"SKU-1": SKU1, "SKU-2": None}
    assert details.missing == ["user", "product:SKU-2"]
    assert not details.complete


def test_a_product_never_fetched_counts_as_missing() -> None:
    details = compose_details(ORDER, USER, {"SKU-1": SKU1})
    assert details.missing == ["product:SKU-2"]


def test_each_sku_once_in_line_order_and_odd_items_ignored() -> None:
    assert skus_of(ORDER) == ["SKU-1", "SKU-2"]
    assert skus_of({"items": [{"sku": ""}, {"quantity": 1}, "x", {"sku": 3}]}) == []
    assert skus_of({}) == []


def upstream(script: Mapping[tuple[str, str], Any], delay_s: float = 0.0) -> ScriptedUpstream:
    return ScriptedUpstream(script, delay_s)


FULL = {
    ("order", f"/orders/{ORDER_ID}"): ORDER,
    ("user", "/users/user-1"): USER,
    ("catalog", "/products/SKU-1"): SKU1,
    ("catalog", "/products/SKU-2"): SKU2,
}


async def test_details_from_every_part() -> None:
    details = await application.order_details(upstream(FULL), ORDER_ID, OPERATOR)
    assert details.complete and details.products["SKU-2"] == SKU2


async def test_parts_are_fetched_concurrently() -> None:
    started = time.monotonic()
    await application.order_details(upstream(FULL, delay_s=0.2), ORDER_ID, OPERATOR)
    assert time.monotonic() - started < 0.35  # three parts of 0.2 s each, at once


@pytest.mark.parametrize(
    "failure",
    [500, 503, 404, UpstreamUnavailableError("user", "timed out")],
    ids=["500", "503", "404", "unreachable"],
)
async def test_a_failing_user_is_a_gap_not_an_error(failure: Any) -> None:
    details = await application.order_details(
        upstream(FULL | {("user", "/users/user-1"): failure}), ORDER_ID, OPERATOR
    )
    assert details.user is None and details.missing == ["user"]


async def test_the_user_id_and_sku_are_escaped_into_one_path_segment() -> None:
    order = ORDER | {"user_id": "a/b", "items": [{"sku": "x?y", "quantity": 1}]}
    scripted = ScriptedUpstream({("order", f"/orders/{ORDER_ID}"): order})
    await application.order_details(scripted, ORDER_ID, OPERATOR)
    assert ("user", "/users/a%2Fb") in scripted.asked
    assert ("catalog", "/products/x%3Fy") in scripted.asked


async def test_an_unknown_order_is_not_found() -> None:
    with pytest.raises(application.OrderNotFoundError):
        await application.order_details(
            upstream({("order", f"/orders/{ORDER_ID}"): 404}), ORDER_ID, OPERATOR
        )


@pytest.mark.parametrize(
    "failure",
    [500, 503, UpstreamUnavailableError("order", "refused")],
    ids=["500", "503", "unreachable"],
)
async def test_an_order_service_that_cannot_answer_is_unavailable(failure: Any) -> None:
    with pytest.raises(application.OrderUnavailableError):
        await application.order_details(
            upstream({("order", f"/orders/{ORDER_ID}"): failure}), ORDER_ID, OPERATOR
        )


async def test_an_order_answer_that_is_no_order_is_a_bad_upstream_reply() -> None:
    with pytest.raises(application.BadUpstreamReplyError):
        await application.order_details(
            upstream({("order", f"/orders/{ORDER_ID}"): ["not", "an", "object"]}),
            ORDER_ID,
            OPERATOR,
        )
    with pytest.raises(application.BadUpstreamReplyError):
        await application.order_details(
            upstream({("order", f"/orders/{ORDER_ID}"): 400}), ORDER_ID, OPERATOR
        )


async def test_a_customer_sees_their_own_order_and_another_s_is_not_found() -> None:
    owner = Principal("user-1", frozenset(), operator=False)
    assert (await application.order_details(upstream(FULL), ORDER_ID, owner)).complete
    other = ScriptedUpstream(FULL)
    with pytest.raises(application.OrderNotFoundError):
        await application.order_details(other, ORDER_ID, Principal("user-2", frozenset(), False))
    assert other.asked == [("order", f"/orders/{ORDER_ID}")]  # nothing more was fetched


def test_who_may_see_an_order() -> None:
    assert may_see("u1", viewer_id="u1", operator=False)
    assert not may_see("u1", viewer_id="u2", operator=False)
    assert not may_see(None, viewer_id="u2", operator=False)  # an owner the view lacks yet
    assert may_see(None, viewer_id="ops", operator=True)


def test_idempotency_keys_are_each_customer_s_own() -> None:
    assert scoped_idempotency_key("u1", "k") == scoped_idempotency_key("u1", "k")
    assert scoped_idempotency_key("u1", "k") != scoped_idempotency_key("u2", "k")
    assert scoped_idempotency_key("u1", "k\nx") != scoped_idempotency_key("u1\nk", "x")
    assert len(scoped_idempotency_key("u" * 64, "k" * 200)) <= 200  # the order service's bound

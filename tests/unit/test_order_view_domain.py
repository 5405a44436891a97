"""The order view's pure rules: status precedence is order-independent, history is ordered
and free of duplicates whatever the arrival order, stored documents become complete views,
and the digest depends on content only."""

from __future__ import annotations

import itertools
import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import event_samples as samples
from order_view.domain import (
    OrderStatus,
    SummaryDigest,
    field_key,
    history_detail,
    item_count,
    refused_steps,
    sorted_history,
    status_of,
    summary_from_document,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], OrderStatus.PENDING),
        (["OrderPlaced"], OrderStatus.PENDING),
        (["OrderPlaced", "OrderConfirmed"], OrderStatus.CONFIRMED),
        (["OrderPlaced", "OrderCancelled"], OrderStatus.CANCELLED),
        (
            ["StockReserved", "OrderPlaced", "PaymentFailed", "OrderCancelled"],
            OrderStatus.CANCELLED,
        ),
        (["OrderPlaced", "OrderConfirmed", "OrderShipped"], OrderStatus.SHIPPED),
        (
            ["OrderPlaced", "PaymentProcessed", "OrderConfirmed", "OrderShipped", "OrderDelivered"],
            OrderStatus.DELIVERED,
        ),
    ],
)
def test_the_furthest_step_of_the_life_decides_in_every_order_and_with_duplicates(
    events: list[str], expected: OrderStatus
) -> None:
    for permutation in itertools.permutations(events + events[:1]):
        assert status_of(permutation) is expected, permutation


def test_saga_steps_alone_leave_an_order_pending() -> None:
    assert status_of(["StockReserved", "PaymentProcessed", "StockReleased"]) is OrderStatus.PENDING


def test_a_shipment_shows_its_tracking_number() -> None:
    assert history_detail(samples.order_shipped(tracking_number="TRK-9")) == "tracking TRK-9"
    assert history_detail(samples.order_delivered()) is None


def test_field_keys_are_safe_in_a_path_and_never_collide() -> None:
    rng = random.Random(5)
    alphabet = "a.$%-_ \n\x00é🍵A9"
    drawn = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3000)}
    texts = sorted(drawn | {"", "a.b", "a%2Eb", "$x", "a-b_c", "a..b", "%", "%25", "X\n"})
    keys = [field_key(t) for t in texts]
    assert len(set(keys)) == len(texts)  # injective
    for key in keys:  # a non-empty MongoDB field name of safe characters only
        assert key and not key.startswith("$")
        assert set(key) <= set(string.ascii_letters + string.digits + "_-%")
    assert field_key("SKU-1") == "SKU-1"
    assert field_key("sku.with.dots") == "sku%2Ewith%2Edots"  # as before for catalog SKUs


def _entry(step: str, seconds: int) -> dict[str, Any]:
    return {"step": step, "at": T0 + timedelta(seconds=seconds), "detail": None}


def test_refused_steps_do_not_depend_on_the_order_of_arrival() -> None:
    entries = {
        "placed": _entry("OrderPlaced", 0),
        "reserved": _entry("StockReserved", 1),
        "paid": _entry("PaymentProcessed", 2),
        "confirmed": _entry("OrderConfirmed", 3),
        "forged-failed": _entry("StockReservationFailed", 0),
        "forged-refund": _entry("PaymentRefunded", 9),
        "forged-second-payment": _entry("PaymentProcessed", 1),
        "forged-payment-failed": _entry("PaymentFailed", 4),
    }
    answers = set()
    for order in itertools.islice(itertools.permutations(entries), 0, None, 97):
        answers.add(frozenset(refused_steps({k: entries[k] for k in order})))
    assert answers == {
        frozenset({"forged-failed", "forged-refund", "paid", "forged-payment-failed"})
    }  # two payments: the earlier one is kept (here the forged one, at second 1)


def test_a_cancelled_saga_keeps_its_late_steps_and_compensations() -> None:
    entries = {
        "placed": _entry("OrderPlaced", 0),
        "cancelled": _entry("OrderCancelled", 30),
        "reserved": _entry("StockReserved", 31),
        "released": _entry("StockReleased", 32),
        "paid": _entry("PaymentProcessed", 33),
        "refunded": _entry("PaymentRefunded", 34),
    }
    assert refused_steps(entries) == set()
    assert refused_steps({**entries, "failed": _entry("StockReservationFailed", 35)}) == {"failed"}


def test_history_is_sorted_by_time_then_saga_order_whatever_the_map_order() -> None:
    entries = {
        "e-release": {"step": "StockReleased", "at": T0 + timedelta(seconds=3), "detail": None},
        "e-cancel": {"step": "OrderCancelled", "at": T0 + timedelta(seconds=2), "detail": "x"},
        "e-failed": {"step": "PaymentFailed", "at": T0 + timedelta(seconds=2), "detail": "y"},
        "e-placed": {"step": "OrderPlaced", "at": T0, "detail": None},
    }
    expected = ["OrderPlaced", "PaymentFailed", "OrderCancelled", "StockReleased"]
    for permutation in itertools.permutations(entries.items()):
        assert [h.step for h in sorted_history(dict(permutation))] == expected


def test_history_detail_says_why_or_how_much() -> None:
    assert history_detail(samples.payment_failed(reason="insufficient_funds")) == (
        "insufficient_funds"
    )
    assert history_detail(samples.payment_processed(amount="12.50")) == "amount 12.50"
    assert history_detail(samples.stock_released()) is None


def test_item_count_sums_quantities() -> None:
    assert item_count(samples.order_lines(("a", 2, "1.00"), ("b", 3, "1.00"))) == 5
    assert item_count([]) == 0


def test_a_document_becomes_a_view_with_names_and_defaults() -> None:
    doc = {
        "_id": "o1",
        "user_id": "u1",
        "items": [
            {"sku": "a.b", "quantity": 2, "unit_price": "1.00"},
            {"sku": "c", "quantity": 1, "unit_price": "3.00"},
        ],
        "item_count": 3,
        "total": "5.00",
        "order_version": 1,
        "created_at": T0,
        "updated_at": T0,
        "product_names": {field_key("a.b"): "Teapot"},
        "history": {"e1": {"step": "OrderPlaced", "at": T0, "detail": None}},
    }
    view = summary_from_document(doc)
    assert view.status is OrderStatus.PENDING  # read from the history, which holds no outcome
    assert view.user is None and view.cancel_reason is None
    assert [(i.sku, i.name) for i in view.items] == [("a.b", "Teapot"), ("c", None)]
    assert [h.step for h in view.history] == ["OrderPlaced"]


def test_the_digest_depends_on_content_only() -> None:
    base = {
        "_id": "o1",
        "user_id": "u1",
        "order_version": 1,
        "history": {"e1": {"step": "OrderPlaced", "at": T0, "detail": None}},
    }
    a, b, c = SummaryDigest(), SummaryDigest(), SummaryDigest()
    a.add(summary_from_document(base))
    b.add(summary_from_document({**base, "applied_at": T0 + timedelta(days=1)}))
    cancelled = {"step": "OrderCancelled", "at": T0, "detail": "payment_failed"}
    c.add(summary_from_document({**base, "history": {**base["history"], "e2": cancelled}}))
    assert a.hexdigest() == b.hexdigest() != c.hexdigest()
    assert a.count == 1

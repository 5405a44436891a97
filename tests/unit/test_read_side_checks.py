"""The read-side checks must notice a read model or a composition that disagrees."""

from __future__ import annotations

from typing import Any

from polysaga_tools.read_side import details_mismatches, summary_mismatches

ORDER = {
    "order_id": "o1",
    "user_id": "u1",
    "status": "CONFIRMED",
    "total": "25.00",
    "items": [{"sku": "lamp", "quantity": 2, "unit_price": "12.50"}],
}
USER = {"name": "Grace", "email": "grace@example.com"}


def summary(**changes: Any) -> dict[str, Any]:
    base = {
        "order_id": "o1",
        "status": "CONFIRMED",
        "total": "25.00",
        "item_count": 2,
        "user": dict(USER),
        "items": [{"sku": "lamp", "name": "Desk lamp", "quantity": 2}],
    }
    return base | changes


def test_an_agreeing_summary_has_no_mismatch() -> None:
    assert summary_mismatches(ORDER, summary(), USER, {"lamp": "Desk lamp"}) == []


def test_each_disagreement_of_the_summary_is_reported() -> None:
    assert summary_mismatches(ORDER, None, USER, {}) == ["o1: no summary"]
    assert summary_mismatches(ORDER, summary(status="PENDING"), USER, {})
    assert summary_mismatches(ORDER, summary(total="24.00"), USER, {})
    assert summary_mismatches(ORDER, summary(item_count=3), USER, {})
    assert summary_mismatches(ORDER, summary(user=None), USER, {})
    assert summary_mismatches(ORDER, summary(), USER, {"lamp": "Floor lamp"})


def test_a_user_unknown_to_the_user_service_is_not_required_in_the_summary() -> None:
    assert summary_mismatches(ORDER, summary(user=None), None, {}) == []


def test_composition_must_agree_with_the_summary() -> None:
    details = {
        "order": {"status": "CONFIRMED", "total": "25.00"},
        "user": {"name": "Grace"},
        "products": {"lamp": {"name": "Desk lamp"}},
    }
    assert details_mismatches(summary(), details) == []
    assert details_mismatches(summary(), details | {"user": None})
    assert details_mismatches(summary(), details | {"products": {"lamp": None}})
    assert details_mismatches(
        summary(), details | {"order": {"status": "PENDING", "total": "25.00"}}
    )

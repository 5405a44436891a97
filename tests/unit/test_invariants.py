"""The invariant checker must catch each kind of broken saga, not only pass good ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from polysaga_tools.invariants import INVARIANTS, Baseline, OrderFacts, evaluate


def facts(
    order_id: str,
    status: str,
    *,
    quantity: int = 2,
    reservation: str | None = "RESERVED",
    payment: str | None = "CHARGED",
    total: str = "4.00",
) -> OrderFacts:
    order = {
        "order_id": order_id,
        "user_id": "ann",
        "status": status,
        "total": total,
        "items": [{"sku": "tea", "quantity": quantity, "unit_price": "2.00"}],
    }
    res = None if reservation is None else {"status": reservation}
    pays: list[dict[str, Any]] = [] if payment is None else [{"status": payment, "amount": total}]
    return OrderFacts(order, res, pays)


def good_world() -> tuple[list[OrderFacts], dict[str, dict[str, int]], Baseline]:
    orders = [
        facts("o1", "CONFIRMED"),
        facts("o2", "CANCELLED", reservation="RELEASED", payment="REFUNDED"),
        facts("o3", "CANCELLED", reservation="FAILED", payment=None),
    ]
    levels = {"tea": {"available": 8, "reserved": 2}}
    baseline = Baseline(stock={"tea": 10}, balances={"ann": Decimal("10.00")})
    return orders, levels, baseline


def test_a_consistent_world_holds_every_invariant() -> None:
    orders, levels, baseline = good_world()
    report = evaluate(orders, levels, {"ann": Decimal("6.00")}, baseline)
    assert report.invariants == dict.fromkeys(INVARIANTS, True)
    assert (report.confirmed, report.cancelled, report.compensations) == (1, 2, 2)
    assert report.violations == []


@pytest.mark.parametrize(
    ("mutate", "broken"),
    [
        (lambda o, lv, b: o.append(facts("o4", "PENDING")), "every_saga_ended"),
        (lambda o, lv, b: lv.update(tea={"available": -1, "reserved": 2}), "no_oversell"),
        (lambda o, lv, b: lv.update(tea={"available": 9, "reserved": 2}), "stock_conserved"),
        (lambda o, lv, b: b.update(ann=Decimal("7.00")), "money_conserved"),
        (
            lambda o, lv, b: o[0].payments.append({"status": "CHARGED", "amount": "4.00"}),
            "no_double_charge",
        ),
        (
            lambda o, lv, b: o.append(facts("o5", "CANCELLED", reservation="FAILED")),
            "cancelled_orders_compensated",
        ),
    ],
)
def test_each_kind_of_violation_is_caught(mutate: Any, broken: str) -> None:
    orders, levels, baseline = good_world()
    balances = {"ann": Decimal("6.00")}
    mutate(orders, levels, balances)
    report = evaluate(orders, levels, balances, baseline)
    assert report.invariants[broken] is False
    assert report.violations
    assert not report.ok


def test_without_a_baseline_held_stock_must_equal_confirmed_demand() -> None:
    orders, _, _ = good_world()
    report = evaluate(orders, {"tea": {"available": 0, "reserved": 5}}, {})
    assert report.invariants["stock_conserved"] is False
    assert report.invariants["money_conserved"] is True


@pytest.mark.parametrize("status", ["SHIPPED", "DELIVERED"])
def test_a_shipped_or_delivered_order_is_a_sale_for_every_invariant(status: str) -> None:
    orders, levels, baseline = good_world()
    orders[0] = facts("o1", status)
    report = evaluate(orders, levels, {"ann": Decimal("6.00")}, baseline)
    assert report.invariants == dict.fromkeys(INVARIANTS, True), report.violations
    assert report.confirmed == 1
    # And it is held to a sale's rules: shipped without its charge breaks money_conserved.
    orders[0] = facts("o1", status, payment="REFUNDED")
    broken = evaluate(orders, levels, {"ann": Decimal("10.00")}, baseline)
    assert broken.invariants["money_conserved"] is False

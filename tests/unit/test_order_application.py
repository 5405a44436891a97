"""Order commands and saga reactions against an in-memory OrderStore."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from event_samples import sample
from fakes import FakeUnitOfWork
from fakes.order import FakeOrderStore
from order.application import (
    EVENT_HANDLERS,
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    OrderStateConflictError,
    PlaceOrder,
    PriceNotFoundError,
    cancel_overdue,
    count_by_status,
    deliver_order,
    get_order,
    get_price,
    list_orders,
    on_payment_failed,
    on_payment_processed,
    on_product_priced,
    on_saga_compensated,
    on_saga_completed,
    on_stock_reservation_failed,
    place_order,
    ship_order,
)
from order.domain import Order, OrderStatus, UnknownProductError
from order.ports import ConcurrencyConflictError
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope, new_event
from polysaga.events.saga_style import SagaStyle
from polysaga.money import format_money
from polysaga.unit_of_work import UnitNotOpenError

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DEADLINE_S = 30.0


@pytest.fixture
def fake() -> FakeOrderStore:
    return FakeOrderStore({"APPLE": Decimal("1.25"), "PEAR": Decimal("0.40")})


async def place(
    fake: FakeOrderStore,
    items: tuple[tuple[str, int], ...] = (("APPLE", 2),),
    *,
    key: str | None = None,
    user: str = "user-1",
    now: datetime = NOW,
    saga: SagaStyle = SagaStyle.CHOREOGRAPHY,
) -> str:
    unit = FakeUnitOfWork(fake)
    command = PlaceOrder(user, items, key, saga)
    placed = await place_order(unit, command, now=now, deadline_s=DEADLINE_S)
    assert unit.commits == 1 or key is not None  # a repeated key commits nothing new
    return placed.order_id


def payment_event(name: str, order_id: str, **extra: Any) -> Envelope[Any]:
    return new_event(sample(name, order_id=uuid.UUID(order_id), **extra))


async def status_of(fake: FakeOrderStore, order_id: str) -> Order:
    order = await fake.load(order_id)
    assert order is not None
    return order


def saga_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("polysaga_sagas_total", {"outcome": outcome}) or 0.0


# --- place_order ------------------------------------------------------------------------


async def test_place_order_appends_one_pending_order(fake: FakeOrderStore) -> None:
    placed = await place_order(
        FakeUnitOfWork(fake),
        PlaceOrder("user-1", (("APPLE", 2), ("PEAR", 1))),
        now=NOW,
        deadline_s=DEADLINE_S,
    )

    assert placed.version == 1
    assert [e.name for e in fake.streams[placed.order_id]] == ["OrderPlaced"]
    order = await status_of(fake, placed.order_id)
    assert order.status is OrderStatus.PENDING
    assert order.total == Decimal("2.90")
    assert order.deadline_at == NOW + timedelta(seconds=DEADLINE_S)


async def test_place_order_with_unknown_sku_appends_nothing_and_commits_nothing(
    fake: FakeOrderStore,
) -> None:
    unit = FakeUnitOfWork(fake)
    with pytest.raises(UnknownProductError):
        await place_order(
            unit, PlaceOrder("user-1", (("APPLE", 1), ("KIWI", 1))), now=NOW, deadline_s=1
        )

    assert fake.streams == {}
    assert (unit.commits, unit.rollbacks) == (0, 1)


async def test_a_command_uses_its_store_only_inside_its_unit(fake: FakeOrderStore) -> None:
    unit = FakeUnitOfWork(fake)
    await place_order(unit, PlaceOrder("user-1", (("APPLE", 1),)), now=NOW, deadline_s=1)

    assert (unit.commits, unit.rollbacks) == (1, 0)
    with pytest.raises(UnitNotOpenError):
        unit.store  # noqa: B018 - the unit is closed once the command returned


async def test_queries_read_through_a_unit_and_commit_nothing(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    unit = FakeUnitOfWork(fake)

    order = await get_order(unit, order_id)
    counts = await count_by_status(unit)
    listed = await list_orders(unit, "PENDING", None, 10)

    assert order.order_id == order_id
    assert counts == {
        "PENDING": 1,
        "CONFIRMED": 0,
        "CANCELLED": 0,
        "SHIPPED": 0,
        "DELIVERED": 0,
    }
    assert [o.order_id for o in listed] == [order_id]
    assert unit.commits == 0
    with pytest.raises(OrderNotFoundError, match=r"no order .* as of"):
        await get_order(unit, str(uuid.uuid4()), as_of=NOW)
    with pytest.raises(PriceNotFoundError):
        await get_price(unit, "KIWI")
    assert await get_price(unit, "APPLE") == Decimal("1.25")


async def test_orders_without_a_key_are_distinct(fake: FakeOrderStore) -> None:
    first = await place(fake)
    second = await place(fake)

    assert first != second
    assert len(fake.streams) == 2


async def test_same_key_and_body_returns_the_earlier_order(fake: FakeOrderStore) -> None:
    first = await place(fake, key="k-1")
    again = await place(fake, key="k-1")

    assert again == first
    assert list(fake.streams) == [first]
    assert len(fake.streams[first]) == 1


async def test_same_key_with_another_body_is_refused(fake: FakeOrderStore) -> None:
    await place(fake, (("APPLE", 2),), key="k-1")

    with pytest.raises(IdempotencyKeyReusedError):
        await place(fake, (("APPLE", 3),), key="k-1")
    with pytest.raises(IdempotencyKeyReusedError):
        await place(fake, (("APPLE", 2),), key="k-1", user="user-2")
    assert len(fake.streams) == 1


async def test_distinct_keys_place_distinct_orders(fake: FakeOrderStore) -> None:
    assert await place(fake, key="k-1") != await place(fake, key="k-2")


def test_fingerprint_depends_on_user_and_items() -> None:
    base = PlaceOrder("user-1", (("APPLE", 2),), "k")

    assert base.fingerprint() == PlaceOrder("user-1", (("APPLE", 2),), "other").fingerprint()
    assert base.fingerprint() != PlaceOrder("user-2", (("APPLE", 2),), "k").fingerprint()
    assert base.fingerprint() != PlaceOrder("user-1", (("APPLE", 1),), "k").fingerprint()


# --- optimistic concurrency -------------------------------------------------------------


async def test_append_from_a_stale_order_is_refused(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    stale = await status_of(fake, order_id)
    await fake.append(stale, stale.confirm(NOW))

    with pytest.raises(ConcurrencyConflictError):
        await fake.append(stale, stale.cancel("late", NOW))

    assert [e.name for e in fake.streams[order_id]] == ["OrderPlaced", "OrderConfirmed"]
    assert (await status_of(fake, order_id)).status is OrderStatus.CONFIRMED


# --- saga reactions ---------------------------------------------------------------------


def test_handler_map_covers_the_reactions() -> None:
    assert {
        "PaymentProcessed": on_payment_processed,
        "PaymentFailed": on_payment_failed,
        "StockReservationFailed": on_stock_reservation_failed,
        "SagaCompleted": on_saga_completed,
        "SagaCompensated": on_saga_compensated,
        "ProductCreated": on_product_priced,
        "ProductPriceChanged": on_product_priced,
    } == EVENT_HANDLERS


async def test_payment_processed_confirms_a_pending_order(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    confirmed_before = saga_count("confirmed")

    await on_payment_processed(
        payment_event("PaymentProcessed", order_id, amount="2.50"), fake, NOW
    )

    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CONFIRMED
    assert order.version == 3  # OrderPlaced, PaymentReceived, OrderConfirmed
    assert (order.paid_at, fake.streams[order_id][1].data.amount) == (NOW, "2.50")
    assert saga_count("confirmed") == confirmed_before + 1


async def test_payment_processed_twice_confirms_once(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    event = payment_event("PaymentProcessed", order_id, amount="2.50")

    await on_payment_processed(event, fake, NOW)
    await on_payment_processed(event, fake, NOW)

    names = [e.name for e in fake.streams[order_id]]
    assert names == ["OrderPlaced", "PaymentReceived", "OrderConfirmed"]


async def test_payment_processed_leaves_a_cancelled_order_cancelled(
    fake: FakeOrderStore,
) -> None:
    order_id = await place(fake)
    await cancel_overdue(FakeUnitOfWork(fake), NOW + timedelta(seconds=DEADLINE_S + 1))
    confirmed_before = saga_count("confirmed")

    await on_payment_processed(
        payment_event("PaymentProcessed", order_id, amount="2.50"), fake, NOW
    )

    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CANCELLED
    assert len(fake.streams[order_id]) == 2
    assert saga_count("confirmed") == confirmed_before


async def test_payment_failed_cancels_with_reason(fake: FakeOrderStore) -> None:
    order_id = await place(fake)

    await on_payment_failed(
        payment_event("PaymentFailed", order_id, reason="insufficient_funds"),
        fake,
        NOW,
    )

    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason == "payment_failed: insufficient_funds"


async def test_stock_reservation_failed_cancels_with_reason(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    event = payment_event("StockReservationFailed", order_id, reason="insufficient_stock")

    await on_stock_reservation_failed(event, fake, NOW)

    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason == "stock_unavailable: insufficient_stock"


async def test_failure_after_confirmation_changes_nothing(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    await on_payment_processed(
        payment_event("PaymentProcessed", order_id, amount="2.50"), fake, NOW
    )

    await on_payment_failed(
        payment_event("PaymentFailed", order_id, reason="no_account"), fake, NOW
    )

    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CONFIRMED
    assert len(fake.streams[order_id]) == 3


def rejected_count(reason: str) -> float:
    labels = {"event_type": "PaymentProcessed", "reason": reason}
    return REGISTRY.get_sample_value("polysaga_events_rejected_total", labels) or 0.0


async def test_a_payment_for_no_order_of_ours_is_rejected_for_a_refund(
    fake: FakeOrderStore,
) -> None:
    """Issue 14, class 7: a charge the order service cannot match is compensated."""
    order_id = str(uuid.uuid4())
    before = rejected_count("unknown_order")
    await on_payment_processed(
        payment_event("PaymentProcessed", order_id, user_id="u-9", amount="5.00"),
        fake,
        NOW,
    )
    assert [e.name for e in fake.published] == ["PaymentRejected"]
    rejected = fake.published[0].data
    assert (str(rejected.order_id), rejected.user_id, rejected.amount, rejected.reason) == (
        order_id,
        "u-9",
        "5.00",
        "unknown_order",
    )
    assert rejected_count("unknown_order") == before + 1
    assert await fake.load(order_id) is None  # no order came of it


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"amount": "0.01"}, "amount_mismatch", id="less"),
        pytest.param({"amount": "999.00"}, "amount_mismatch", id="more"),
        pytest.param({"user_id": "someone-else"}, "user_mismatch", id="other-user"),
    ],
)
async def test_a_payment_that_does_not_match_the_order_does_not_confirm_it(
    fake: FakeOrderStore, fields: dict[str, str], reason: str
) -> None:
    order_id = await place(fake)
    order = await status_of(fake, order_id)
    paid = {"user_id": order.user_id, "amount": format_money(order.total), **fields}
    await on_payment_processed(payment_event("PaymentProcessed", order_id, **paid), fake, NOW)
    assert (await status_of(fake, order_id)).status is OrderStatus.PENDING
    assert [(e.name, e.data.reason) for e in fake.published] == [("PaymentRejected", reason)]

    # The order's own payment still confirms it.
    matching = {"user_id": order.user_id, "amount": format_money(order.total)}
    await on_payment_processed(payment_event("PaymentProcessed", order_id, **matching), fake, NOW)
    assert (await status_of(fake, order_id)).status is OrderStatus.CONFIRMED
    assert len(fake.published) == 1


# --- deadlines --------------------------------------------------------------------------


async def test_cancel_overdue_cancels_only_pending_orders_past_deadline(
    fake: FakeOrderStore,
) -> None:
    overdue = await place(fake, now=NOW)
    confirmed = await place(fake, now=NOW)
    fresh = await place(fake, now=NOW + timedelta(seconds=20))
    await on_payment_processed(
        payment_event("PaymentProcessed", confirmed, amount="2.50"), fake, NOW
    )

    cancelled = await cancel_overdue(FakeUnitOfWork(fake), NOW + timedelta(seconds=DEADLINE_S + 1))

    assert cancelled == 1
    assert (await status_of(fake, overdue)).cancel_reason == "deadline_exceeded"
    assert (await status_of(fake, confirmed)).status is OrderStatus.CONFIRMED
    assert (await status_of(fake, fresh)).status is OrderStatus.PENDING


async def test_cancel_overdue_honours_the_limit_and_is_repeatable(
    fake: FakeOrderStore,
) -> None:
    for _ in range(3):
        await place(fake)
    later = NOW + timedelta(seconds=DEADLINE_S + 1)

    assert await cancel_overdue(FakeUnitOfWork(fake), later, limit=2) == 2
    assert await cancel_overdue(FakeUnitOfWork(fake), later, limit=2) == 1
    assert await cancel_overdue(FakeUnitOfWork(fake), later, limit=2) == 0


# --- an orchestrated order ends when the orchestrator says so -------------------------


async def test_an_orchestrated_order_ignores_the_choreography_and_ends_on_the_saga_outcome(
    fake: FakeOrderStore,
) -> None:
    order_id = await place(fake, saga=SagaStyle.ORCHESTRATION)
    placed = fake.streams[order_id][0].data
    assert isinstance(placed, P.OrderPlaced) and placed.saga == "orchestration"
    for reaction, name, extra in (
        (on_payment_processed, "PaymentProcessed", {"amount": "2.50"}),
        (on_payment_failed, "PaymentFailed", {"reason": "insufficient_funds"}),
        (on_stock_reservation_failed, "StockReservationFailed", {"reason": "x"}),
    ):
        await reaction(payment_event(name, order_id, **extra), fake, NOW)
    pending = await status_of(fake, order_id)
    # The payment is the order's (recorded), but only the orchestrator ends the saga.
    assert (pending.status, pending.paid_at) == (OrderStatus.PENDING, NOW)
    assert [e.name for e in fake.streams[order_id]] == ["OrderPlaced", "PaymentReceived"]
    assert fake.published == []  # the payment matched the order: nothing to reject
    # Nor does the deadline end it: the orchestrator's step timeouts do.
    later = NOW + timedelta(seconds=DEADLINE_S + 1)
    assert await cancel_overdue(FakeUnitOfWork(fake), later) == 0
    await on_saga_completed(payment_event("SagaCompleted", order_id), fake, NOW)
    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CONFIRMED and order.orchestrated
    confirmed = fake.streams[order_id][-1].data
    assert isinstance(confirmed, P.OrderConfirmed) and confirmed.saga == "orchestration"


async def test_a_compensated_saga_cancels_its_order_with_the_reason(fake: FakeOrderStore) -> None:
    order_id = await place(fake, saga=SagaStyle.ORCHESTRATION)
    outcome = payment_event("SagaCompensated", order_id, reason="step_timeout: ChargePayment")
    await on_saga_compensated(outcome, fake, NOW)
    order = await status_of(fake, order_id)
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason == "step_timeout: ChargePayment"


async def test_a_choreographed_order_ignores_saga_outcomes(fake: FakeOrderStore) -> None:
    order_id = await place(fake)
    await on_saga_completed(payment_event("SagaCompleted", order_id), fake, NOW)
    assert (await status_of(fake, order_id)).status is OrderStatus.PENDING


# --- the rest of the order's life -------------------------------------------------------


async def test_a_confirmed_order_ships_and_is_delivered_each_in_one_unit(
    fake: FakeOrderStore,
) -> None:
    order_id = await place(fake)
    order = await status_of(fake, order_id)
    matching = {"user_id": order.user_id, "amount": format_money(order.total)}
    await on_payment_processed(payment_event("PaymentProcessed", order_id, **matching), fake, NOW)
    unit = FakeUnitOfWork(fake)
    shipped = await ship_order(unit, order_id, "1Z-1", now=NOW)
    assert (shipped.status, shipped.tracking_number) == (OrderStatus.SHIPPED, "1Z-1")
    delivered = await deliver_order(unit, order_id, now=NOW)
    assert delivered.status is OrderStatus.DELIVERED and unit.commits == 2


async def test_shipping_an_order_that_is_not_confirmed_is_a_conflict_that_writes_nothing(
    fake: FakeOrderStore,
) -> None:
    order_id = await place(fake)
    unit = FakeUnitOfWork(fake)
    with pytest.raises(OrderStateConflictError, match="PENDING"):
        await ship_order(unit, order_id, "1Z-1", now=NOW)
    with pytest.raises(OrderStateConflictError):
        await deliver_order(unit, order_id, now=NOW)
    with pytest.raises(OrderNotFoundError):
        await ship_order(unit, str(uuid.uuid4()), "1Z-1", now=NOW)
    assert len(fake.streams[order_id]) == 1 and (unit.commits, unit.rollbacks) == (0, 3)

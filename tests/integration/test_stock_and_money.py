"""Strong consistency inside one service, on real PostgreSQL: stock is never oversold and a
balance never goes negative, however many reactions run at once; compensations run once."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import event_samples as samples
from inventory import application as inventory_app
from inventory.adapters import MIGRATIONS as INVENTORY_MIGRATIONS
from inventory.adapters import PostgresInventoryStore as InventoryStore
from payment import application as payment_app
from payment.adapters import MIGRATIONS as PAYMENT_MIGRATIONS
from payment.adapters import PostgresPaymentStore as PaymentStore
from payment.domain import PaymentStatus
from polysaga.events.envelope import new_event
from polysaga.persistence.database import is_retryable, migrate


@pytest.fixture
async def stores(engine: AsyncEngine) -> AsyncEngine:
    await migrate(engine, [*INVENTORY_MIGRATIONS, *PAYMENT_MIGRATIONS])
    return engine


async def retrying(engine: AsyncEngine, work) -> list:  # type: ignore[no-untyped-def, type-arg]
    for _ in range(20):
        try:
            async with engine.begin() as conn:
                return await work(conn)  # type: ignore[no-any-return]
        except Exception as exc:
            if not is_retryable(exc):
                raise
    raise AssertionError("never succeeded")


async def test_fifty_concurrent_orders_for_the_last_ten_units_reserve_exactly_ten(
    stores: AsyncEngine,
) -> None:
    async with stores.begin() as conn:
        await InventoryStore(conn).set_available("last", 10)
        await InventoryStore(conn).set_available("plenty", 1000)

    async def order_one() -> str:
        lines = samples.order_lines(("plenty", 1, "0.50"), ("last", 1, "0.50"))
        event = new_event(samples.order_placed(user_id="u", total="1.00", items=lines))
        emitted = await retrying(
            stores, lambda conn: inventory_app.on_order_placed(event, InventoryStore(conn))
        )
        return str(emitted[0].name)

    outcomes = await asyncio.gather(*(order_one() for _ in range(50)))
    assert outcomes.count("StockReserved") == 10
    assert outcomes.count("StockReservationFailed") == 40
    async with stores.connect() as conn:
        last = await InventoryStore(conn).level("last")
        plenty = await InventoryStore(conn).level("plenty")
    assert last is not None and (last.available, last.reserved) == (0, 10)
    # All-or-nothing: the 40 failures took nothing of the SKU that had plenty.
    assert plenty is not None and (plenty.available, plenty.reserved) == (990, 10)


async def test_concurrent_charges_never_take_a_balance_below_zero(stores: AsyncEngine) -> None:
    async with stores.begin() as conn:
        await PaymentStore(conn).set_balance("alice", Decimal("10.00"))

    async def charge() -> str:
        oid = uuid.uuid4()
        placed = new_event(samples.order_placed(order_id=oid, user_id="alice", total="3.00"))
        event = new_event(samples.stock_reserved(order_id=oid, user_id="alice", total="3.00"))
        await retrying(stores, lambda conn: payment_app.on_order_placed(placed, PaymentStore(conn)))
        emitted = await retrying(
            stores, lambda conn: payment_app.on_stock_reserved(event, PaymentStore(conn))
        )
        return str(emitted[0].name)

    outcomes = await asyncio.gather(*(charge() for _ in range(20)))
    assert outcomes.count("PaymentProcessed") == 3
    async with stores.connect() as conn:
        assert await PaymentStore(conn).balance("alice") == Decimal("1.00")


async def test_a_charge_that_lands_after_the_cancel_decision_is_refunded_once(
    stores: AsyncEngine,
) -> None:
    order_id = str(uuid.uuid4())
    async with stores.begin() as conn:
        await PaymentStore(conn).set_balance("bob", Decimal("50.00"))
    oid = uuid.UUID(order_id)
    reserved = new_event(samples.stock_reserved(order_id=oid, user_id="bob", total="20.00"))
    cancelled = new_event(
        samples.order_cancelled(order_id=oid, user_id="bob", reason="deadline_exceeded")
    )
    placed = new_event(samples.order_placed(order_id=oid, user_id="bob", total="20.00"))
    async with stores.begin() as conn:
        assert await payment_app.on_order_placed(placed, PaymentStore(conn)) == []
    async with stores.begin() as conn:
        charged = await payment_app.on_stock_reserved(reserved, PaymentStore(conn))
    async with stores.begin() as conn:
        refunded = await payment_app.on_order_cancelled(cancelled, PaymentStore(conn))
    async with stores.begin() as conn:
        again = await payment_app.on_order_cancelled(cancelled, PaymentStore(conn))
    async with stores.connect() as conn:
        store = PaymentStore(conn)
        balance, payment = await store.balance("bob"), await store.payment(order_id)
    assert [e.name for e in charged] == ["PaymentProcessed"]
    assert [e.name for e in refunded] == ["PaymentRefunded"]
    assert again == []
    assert balance == Decimal("50.00")
    assert payment is not None and payment.status is PaymentStatus.REFUNDED


async def test_an_order_and_its_reservation_racing_are_charged_exactly_once(
    stores: AsyncEngine,
) -> None:
    """Issue 14, class 7: payment hears of an order (ORDERS) and of its reservation
    (INVENTORY) on two consumers, in either order or at once; each order is charged its
    placed total exactly once, and a reservation naming another total is charged never."""
    async with stores.begin() as conn:
        await PaymentStore(conn).set_balance("carol", Decimal("1000.00"))
    orders = [uuid.uuid4() for _ in range(30)]

    async def deliver(oid: uuid.UUID, forged: bool) -> list[str]:
        placed = new_event(samples.order_placed(order_id=oid, user_id="carol", total="7.00"))
        claim = "1.00" if forged else "7.00"
        reserved = new_event(samples.stock_reserved(order_id=oid, user_id="carol", total=claim))
        results = await asyncio.gather(
            retrying(stores, lambda c: payment_app.on_order_placed(placed, PaymentStore(c))),
            retrying(stores, lambda c: payment_app.on_stock_reserved(reserved, PaymentStore(c))),
        )
        return [e.name for emitted in results for e in emitted]

    outcomes = await asyncio.gather(*(deliver(o, i % 3 == 0) for i, o in enumerate(orders)))
    genuine = [o for i, o in enumerate(outcomes) if i % 3]
    forged = [o for i, o in enumerate(outcomes) if not i % 3]
    assert all(o == ["PaymentProcessed"] for o in genuine), genuine
    assert all(o == [] for o in forged), forged
    async with stores.connect() as conn:
        balance = await PaymentStore(conn).balance("carol")
    assert balance == Decimal("1000.00") - 7 * len(genuine)

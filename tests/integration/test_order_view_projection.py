"""The order view's projection against a real MongoDB-wire server (FerretDB v1): applying any
permutation of a realistic event set, each event possibly several times, one after the other
or concurrently, converges to the documents the in-order run produces; and the cases that
make denormalisation hard (the user or product arrives after the order, an older profile
arrives after a newer one) come out right. Concurrent runs interleave handlers between
single writes, as MongoDB would (the URL's single connection makes each FerretDB update
atomic, see polysaga.mongo)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from order_view.adapters import ViewStore, ensure_indexes, generation
from order_view.application import EVENT_HANDLERS, project_batch
from order_view.domain import summary_from_document
from order_view_scenario import (
    ADA,
    BOB,
    CYD,
    GHOST,
    T0,
    Scenario,
    envelope,
    saga_scenario,
    user_id,
)
from polysaga.events.envelope import Envelope
from polysaga.mongo.client import MongoDatabase, connect

pytestmark = pytest.mark.integration

VOLATILE = {"applied_at"}  # when the write happened, not what it says


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[MongoDatabase]:
    client, database = connect(mongo_url)
    yield database
    await client.close()


async def fresh_view(db: MongoDatabase, number: int) -> ViewStore:
    gen = generation(db, number)
    await ensure_indexes(gen)
    return ViewStore(gen)


async def apply(view: ViewStore, events: Sequence[Envelope[Any]], *, concurrency: int = 1) -> None:
    if concurrency == 1:
        for event in events:
            await EVENT_HANDLERS[event.name](event, view)
        return
    for start in range(0, len(events), concurrency):
        chunk = events[start : start + concurrency]
        await asyncio.gather(*(EVENT_HANDLERS[e.name](e, view) for e in chunk))


async def contents(view: ViewStore) -> dict[str, dict[str, Any]]:
    """Every document of the generation, keyed by collection and id, volatile fields out."""
    out: dict[str, dict[str, Any]] = {}
    for collection in (view.gen.summaries, view.gen.users, view.gen.products):
        kind = collection.name.rsplit("_g", 1)[0]
        async for doc in collection.find({}):
            out[f"{kind}/{doc['_id']}"] = {k: v for k, v in doc.items() if k not in VOLATILE}
    return out


def shuffled_with_duplicates(
    events: Sequence[Envelope[Any]], rng: random.Random
) -> list[Envelope[Any]]:
    """Every event at least once; about half of them twice and some three times."""
    out = list(events)
    out += [e for e in events if rng.random() < 0.5]
    out += [e for e in events if rng.random() < 0.15]
    rng.shuffle(out)
    return out


async def test_the_in_order_run_gives_the_expected_view(db: MongoDatabase) -> None:
    scenario = saga_scenario(seed=1)
    view = await fresh_view(db, 1)
    await apply(view, scenario.events)

    steps_by_status = {"CONFIRMED": 4, "PENDING": 1}
    for order_id, status in scenario.orders.items():
        doc = await view.summary(order_id)
        assert doc is not None
        summary = summary_from_document(doc)
        assert summary.status == status
        assert summary.order_version == (1 if status == "PENDING" else 2)
        assert [h.at for h in summary.history] == sorted(h.at for h in summary.history)
        assert summary.history[0].step == "OrderPlaced"
        if status in steps_by_status:
            assert len(summary.history) == steps_by_status[status]
        assert summary.item_count == sum(i.quantity for i in summary.items)
        names = {i.sku: i.name for i in summary.items}
        assert names.get("SKU-1", "Kettle Pro") == "Kettle Pro"
        assert names.get("sku.with.dots", "Teapot") == "Teapot"
        assert names.get("SKU-3", "Mug") == "Mug"
        expected_user = {
            ADA: "Ada, Countess of Lovelace",
            BOB: "Robert Ross",
            CYD: "Cyd Charisse",
            GHOST: None,
        }[summary.user_id or ""]
        assert (summary.user.name if summary.user else None) == expected_user
        if status == "CANCELLED":
            assert summary.cancel_reason
            assert summary.history[-1].step in {
                "OrderCancelled",
                "StockReleased",
                "PaymentRefunded",
            }

    product = await view.gen.products.find_one({"_id": "sku.with.dots"})
    assert product is not None
    assert (product["name"], product["price"], product["version"]) == ("Teapot", "14.00", 2)


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
async def test_any_order_with_duplicates_converges_to_the_in_order_result(
    db: MongoDatabase, seed: int
) -> None:
    scenario = saga_scenario(seed=seed)
    in_order = await fresh_view(db, 1)
    await apply(in_order, scenario.events)
    expected = await contents(in_order)

    rng = random.Random(seed)
    runs = [
        (list(reversed(scenario.events)), 1),
        (shuffled_with_duplicates(scenario.events, rng), 1),
        (shuffled_with_duplicates(scenario.events, rng), 8),  # concurrent: racing upserts
    ]
    for number, (events, concurrency) in enumerate(runs, start=2):
        view = await fresh_view(db, number)
        await apply(view, events, concurrency=concurrency)
        assert await contents(view) == expected, f"seed {seed}, run {number}"


@pytest.mark.parametrize("seed", [21, 22, 23])
async def test_batches_of_any_events_converge_to_the_in_order_result_with_fewer_writes(
    db: MongoDatabase, seed: int
) -> None:
    """The consumers hand the view whole batches (``project_batch``): one order's events in a
    batch become one write, and any batching of any order, with duplicates and with some
    events applied before, gives the same view as one event at a time."""
    from polysaga import metrics

    scenario = saga_scenario(seed=seed)
    in_order = await fresh_view(db, 1)
    await apply(in_order, scenario.events)
    expected = await contents(in_order)
    rng = random.Random(seed)
    writes = metrics.VIEW_WRITES.labels(read_model="order-view")

    def batches(events: Sequence[Envelope], size: int) -> list[Sequence[Envelope]]:
        return [events[i : i + size] for i in range(0, len(events), size)]

    runs = [
        batches(scenario.events, len(scenario.events)),  # everything at once, in order
        batches(shuffled_with_duplicates(scenario.events, rng), 7),
        batches(list(reversed(scenario.events)), 3),
    ]
    for number, run in enumerate(runs, start=2):
        view = await fresh_view(db, number)
        before = writes._value.get()
        if number == 4:  # some events already applied one by one, then all again in batches
            await apply(view, scenario.events[::2])
        for batch in run:
            await project_batch(batch, view)
        assert await contents(view) == expected, f"seed {seed}, run {number}"
        if number == 2:
            # One batch holding everything: one write per order and a name copy per placed
            # order, plus the entity events' writes, far fewer than one per event.
            assert writes._value.get() - before < len(scenario.events)


async def test_a_user_registered_after_the_order_fills_the_name(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(3))
    order_id = s.order(user_id("late"), [("SKU-1", 1, "1.00")], "pending")
    await apply(view, s.events)
    assert summary_from_document(await _summary(view, order_id)).user is None

    s.events.clear()
    s.user(user_id("late"), "Late Comer", 1)
    await apply(view, s.events)
    summary = summary_from_document(await _summary(view, order_id))
    assert summary.user is not None
    assert (summary.user.name, summary.user.email) == ("Late Comer", "late.comer@example.com")


async def test_a_product_renamed_before_and_after_the_order(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(4))
    s.product("SKU-9", "Lamp", "9.00")
    s.rename("SKU-9", "Desk lamp", "Lamp", 2)
    order_id = s.order(user_id("x"), [("SKU-9", 1, "9.00")], "pending")
    await apply(view, s.events)
    assert summary_from_document(await _summary(view, order_id)).items[0].name == "Desk lamp"

    s.events.clear()
    s.rename("SKU-9", "Reading lamp", "Desk lamp", 3)
    await apply(view, s.events)
    assert summary_from_document(await _summary(view, order_id)).items[0].name == "Reading lamp"

    s.events.clear()
    s.rename("SKU-9", "Old name", "?", 2)  # a stale rename, redelivered late
    await apply(view, s.events)
    assert summary_from_document(await _summary(view, order_id)).items[0].name == "Reading lamp"


async def test_an_older_user_version_is_ignored(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(5))
    order_id = s.order(user_id("v"), [("SKU-1", 1, "1.00")], "pending")
    s.user(user_id("v"), "Third", 3)
    s.user(user_id("v"), "Second", 2)
    s.user(user_id("v"), "First", 1)
    await apply(view, s.events)
    summary = summary_from_document(await _summary(view, order_id))
    assert summary.user is not None and summary.user.name == "Third"
    stored = await view.gen.users.find_one({"_id": user_id("v")})
    assert stored is not None and (stored["name"], stored["version"]) == ("Third", 3)


async def test_a_redelivered_order_event_counts_once(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(6))
    order_id = s.order(user_id("r"), [("SKU-1", 2, "1.00")], "confirmed")
    await apply(view, s.events + s.events + s.events)
    doc = await _summary(view, order_id)
    assert doc["order_version"] == 3  # placed, paid, confirmed
    assert len(doc["history"]) == 5


async def test_a_step_before_the_order_is_kept_but_not_served(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    order_id = "6f9619ff-8b86-4d11-b42d-00c04fc964ff"
    reason = {"order_id": order_id, "reason": "insufficient_stock"}
    failed = envelope("StockReservationFailed", order_id, reason, at=T0)
    await apply(view, [failed])
    assert await view.summary(order_id) is None  # a step alone makes no order

    items = [{"sku": "SKU-1", "quantity": 1, "unit_price": "1.00"}]
    data = {"order_id": order_id, "user_id": "u", "total": "1.00", "items": items}
    cancelled = envelope(
        "OrderCancelled", order_id, {**data, "reason": "r"}, at=T0 + timedelta(seconds=1)
    )
    await apply(view, [cancelled])
    summary = summary_from_document(await _summary(view, order_id))
    assert summary.status == "CANCELLED" and summary.order_version == 1
    assert [h.step for h in summary.history] == ["StockReservationFailed", "OrderCancelled"]


async def _summary(view: ViewStore, order_id: str) -> dict[str, Any]:
    doc = await view.summary(order_id)
    assert doc is not None
    return doc


# --- issue 14, class 5: a SKU is data, never a field name --------------------------------

_SKU_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SKU_REST = _SKU_FIRST + "._-"


def catalog_skus(rng: random.Random, count: int) -> list[str]:
    """SKUs the catalog accepts (its pattern), edges first, then drawn at random."""
    edges = ["a", "0", "A.B", "a..b", "a.", "x-", "x_", "9.9.9", "T" * 64, "a._-.z", "a" + "." * 63]
    drawn = [
        rng.choice(_SKU_FIRST) + "".join(rng.choice(_SKU_REST) for _ in range(rng.randint(0, 63)))
        for _ in range(count)
    ]
    return edges + drawn


async def test_any_sku_flows_through_the_view(db: MongoDatabase) -> None:
    rng = random.Random(14)
    # SKUs no field name can hold never get this far: the typed edge refuses them (see
    # test_order_view_service.py), and field_key is total anyway (test_order_view_domain.py).
    skus = catalog_skus(rng, 60)
    s = Scenario(rng)
    orders = {}
    for index, sku in enumerate(skus):
        if index % 2:  # half the products are known before the order, half after
            s.product(sku, f"product {index}", "1.00")
        orders[sku] = s.order("user-s", [(sku, 1, "1.00"), ("plain", 2, "2.00")], "confirmed")
        if not index % 2:
            s.product(sku, f"product {index}", "1.00")
        s.rename(sku, f"renamed {index}", f"product {index}", 2)
    view = await fresh_view(db, 1)
    await apply(view, s.events)

    for index, sku in enumerate(skus):
        summary = summary_from_document(await _summary(view, orders[sku]))
        assert summary.status == "CONFIRMED", repr(sku)
        assert [(i.sku, i.name) for i in summary.items] == [
            (sku, f"renamed {index}"),
            ("plain", None),
        ], repr(sku)
        product = await view.gen.products.find_one({"_id": sku})
        assert product is not None and product["name"] == f"renamed {index}", repr(sku)


# --- issue 14, class 9: only the transitions the saga allows -----------------------------


LINE = [{"sku": "SKU-1", "quantity": 1}]


def _forged(s: Scenario, order_id: str, name: str, **data: Any) -> Envelope[Any]:
    return s.emit(name, order_id, {"order_id": order_id, **data})


def forged_scenario(seed: int) -> tuple[Scenario, dict[str, list[str]], set[str]]:
    """The saga scenario plus steps no saga takes, published after the real ones (with a
    producer's own credentials): the order id -> the steps shown, and the forged event ids."""
    s = saga_scenario(seed=seed)
    confirmed = [o for o, status in s.orders.items() if status == "CONFIRMED"]
    out_of_stock = [e.aggregate_id for e in s.events if e.name == "StockReservationFailed"]
    forged: set[str] = set()
    for order_id in confirmed:
        for name, data in (
            ("StockReservationFailed", {"reason": "forged"}),
            ("PaymentFailed", {"user_id": "u", "reason": "forged"}),
            ("StockReleased", {"items": LINE}),
            ("PaymentRefunded", {"user_id": "u", "amount": "1.00"}),
            ("StockReserved", {"user_id": "u", "items": LINE, "total": "1.00"}),  # a second one
            ("PaymentProcessed", {"user_id": "u", "amount": "1.00"}),  # a second one
        ):
            forged.add(_forged(s, order_id, name, **data).event_id)
    for order_id in out_of_stock:
        for name, data in (
            ("StockReserved", {"user_id": "u", "items": LINE, "total": "1.00"}),
            ("PaymentProcessed", {"user_id": "u", "amount": "1.00"}),
            ("StockReleased", {"items": LINE}),
        ):
            forged.add(_forged(s, order_id, name, **data).event_id)
    shown = {
        "CONFIRMED": ["OrderPlaced", "StockReserved", "PaymentProcessed", "OrderConfirmed"],
        "OUT_OF_STOCK": ["OrderPlaced", "StockReservationFailed", "OrderCancelled"],
    }
    expected = {o: shown["CONFIRMED"] for o in confirmed} | {
        o: shown["OUT_OF_STOCK"] for o in out_of_stock
    }
    return s, expected, forged


@pytest.mark.parametrize("seed", [21, 22, 23])
async def test_steps_the_saga_does_not_allow_are_refused_in_any_order(
    db: MongoDatabase, seed: int
) -> None:
    s, expected, forged = forged_scenario(seed)
    assert forged
    genuine = [e for e in s.events if e.event_id not in forged]
    honest = await fresh_view(db, 1)
    await apply(honest, genuine)
    rng = random.Random(seed)
    for number, (events, concurrency) in enumerate(
        [
            (s.events, 1),  # forged after the real ones
            ([e for e in s.events if e.event_id in forged] + genuine, 1),  # forged first
            (shuffled_with_duplicates(s.events, rng), 1),
            (shuffled_with_duplicates(s.events, rng), 8),
        ],
        start=2,
    ):
        view = await fresh_view(db, number)
        await apply(view, events, concurrency=concurrency)
        for order_id, steps in expected.items():
            summary = summary_from_document(await _summary(view, order_id))
            honest_summary = summary_from_document(await _summary(honest, order_id))
            assert [h.step for h in summary.history] == steps, (number, order_id)
            # Shown exactly as if the forged events had never been published.
            assert summary == honest_summary, (number, order_id)


async def test_a_refused_step_is_reported_once_when_it_arrives(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(9))
    order_id = s.order("user-f", [("SKU-1", 1, "1.00")], "confirmed")
    for event in s.events:
        assert await EVENT_HANDLERS[event.name](event, view) == []
    late_failure = _forged(s, order_id, "StockReservationFailed", reason="forged")
    assert await EVENT_HANDLERS[late_failure.name](late_failure, view) == ["StockReservationFailed"]
    assert await EVENT_HANDLERS[late_failure.name](late_failure, view) == []  # redelivered
    summary = summary_from_document(await _summary(view, order_id))
    assert "StockReservationFailed" not in [h.step for h in summary.history]
    assert summary.status == "CONFIRMED"

    # A forged step first, then the order's own event that rules it out: the step is
    # refused when the authority arrives, and reported then.
    s2 = Scenario(random.Random(10))
    other = s2.order("user-g", [("SKU-1", 1, "1.00")], "confirmed")
    confirmed = s2.events.pop()
    early_release = _forged(s2, other, "StockReleased", items=LINE)
    for event in s2.events:
        await EVENT_HANDLERS[event.name](event, view)
    assert await EVENT_HANDLERS[confirmed.name](confirmed, view) == ["StockReleased"]
    shown = summary_from_document(await _summary(view, other))
    assert [h.step for h in shown.history] == [
        "OrderPlaced",
        "StockReserved",
        "PaymentProcessed",
        "PaymentReceived",
        "OrderConfirmed",
    ]
    assert shown.updated_at == confirmed.time  # a refused step's time does not count
    assert early_release.time > confirmed.time


async def test_a_saga_step_does_not_move_an_order_to_another_user(db: MongoDatabase) -> None:
    view = await fresh_view(db, 1)
    s = Scenario(random.Random(11))
    order_id = s.order("user-owner", [("SKU-1", 1, "1.00")], "pending")
    await apply(view, s.events)
    stolen = _forged(s, order_id, "PaymentFailed", user_id="user-thief", reason="x")
    await apply(view, [stolen])
    assert (await _summary(view, order_id))["user_id"] == "user-owner"
    assert await view.user_orders("user-thief", 10, 0) == []

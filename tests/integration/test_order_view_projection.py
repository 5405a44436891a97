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
from order_view.application import EVENT_HANDLERS
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
    assert doc["order_version"] == 2
    assert len(doc["history"]) == 4


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

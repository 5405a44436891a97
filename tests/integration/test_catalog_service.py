"""The catalog service on real FerretDB (MongoDB wire protocol) and NATS: a product's state
and its events are one single-document write, the embedded outbox empties once the relay
has published, events reach the CATALOG stream in order, a duplicate SKU publishes
nothing, and concurrent changes of one product keep its version and events consistent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.client import Client

from catalog.adapters import MongoProductStore
from catalog.application import add_product, change_product
from catalog.bootstrap import build
from polysaga.mongo.client import MongoDatabase, connect
from polysaga.mongo.unit_of_work import MongoUnitOfWork
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from service_client import (
    body,
    concurrent_client,
    event_name,
    mongo_outbox_drained,
    published,
    service_client,
)


@pytest.fixture
def settings(mongo_url: str, nats_server: NatsServer) -> ServiceSettings:
    # mongo_url carries maxPoolSize=1 (see FerretDBServer.url: FerretDB v1's atomicity).
    return ServiceSettings(
        service_name="catalog",
        mongo_url=mongo_url,
        nats_url=nats_server.url,
        relay_poll_interval_s=0.1,
    )


@pytest.fixture
async def client(settings: ServiceSettings) -> AsyncIterator[AsyncTestClient]:
    async with service_client(build, settings) as client:
        yield client


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[MongoDatabase]:
    client, db = connect(mongo_url)
    yield db
    await client.close()


async def document(db: MongoDatabase, sku: str) -> dict[str, Any]:
    found = await db["products"].find_one({"_id": sku})
    assert found is not None
    return found


async def wait_outbox_empty(db: MongoDatabase, sku: str, timeout_s: float = 10) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (doc := await document(db, sku))["outbox_pending"] != 0:
        assert loop.time() < deadline, f"outbox of {sku} not drained: {doc}"
        await asyncio.sleep(0.05)
    return doc


async def test_create_and_patch_publish_in_order_and_drain_the_outbox(
    client: AsyncTestClient, nc: Client, db: MongoDatabase
) -> None:
    created = await client.post("/products", json={"sku": "mug-1", "name": "Mug", "price": "12.5"})
    assert created.status_code == 201, created.text
    assert created.json() == {"sku": "mug-1", "name": "Mug", "price": "12.50", "version": 1}

    repriced = await client.patch("/products/mug-1", json={"price": "14"})
    renamed = await client.patch("/products/mug-1", json={"name": "Big mug"})
    same = await client.patch("/products/mug-1", json={"name": "Big mug", "price": "14.00"})
    both = await client.patch("/products/mug-1", json={"name": "Huge mug", "price": "19.99"})

    assert [r.status_code for r in (repriced, renamed, same, both)] == [200] * 4
    assert [r.json()["version"] for r in (repriced, renamed, same, both)] == [2, 3, 3, 4]
    assert both.json() == {"sku": "mug-1", "name": "Huge mug", "price": "19.99", "version": 4}
    assert (await client.get("/products/mug-1")).json() == both.json()

    msgs = await published(
        nc.jetstream(),
        "CATALOG",
        "catalog.events.>",
        5,
        drained=mongo_outbox_drained(db["products"]),
    )

    assert [(event_name(m), body(m)) for m in msgs] == [
        ("ProductCreated", {"sku": "mug-1", "name": "Mug", "price": "12.50", "version": 1}),
        (
            "ProductPriceChanged",
            {"sku": "mug-1", "price": "14.00", "previous_price": "12.50", "version": 2},
        ),
        (
            "ProductRenamed",
            {"sku": "mug-1", "name": "Big mug", "previous_name": "Mug", "version": 3},
        ),
        (
            "ProductPriceChanged",
            {"sku": "mug-1", "price": "19.99", "previous_price": "14.00", "version": 4},
        ),
        (
            "ProductRenamed",
            {"sku": "mug-1", "name": "Huge mug", "previous_name": "Big mug", "version": 4},
        ),
    ]
    assert {m.headers["ce-subject"] for m in msgs if m.headers} == {"mug-1"}
    assert [m.subject for m in msgs][:2] == [
        "catalog.events.ProductCreated",
        "catalog.events.ProductPriceChanged",
    ]
    doc = await wait_outbox_empty(db, "mug-1")
    assert doc["outbox"] == {}
    assert (doc["sku"], doc["name"], doc["price"], doc["version"]) == (
        "mug-1",
        "Huge mug",
        "19.99",
        4,
    )
    assert doc["outbox_seq"] == 5


async def test_a_duplicate_sku_is_409_and_publishes_nothing(
    client: AsyncTestClient, nc: Client, db: MongoDatabase
) -> None:
    first = await client.post("/products", json={"sku": "pen", "name": "Pen", "price": "1.00"})
    again = await client.post("/products", json={"sku": "pen", "name": "Other", "price": "9.00"})

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["type"].endswith("/product-exists")
    [msg] = await published(
        nc.jetstream(),
        "CATALOG",
        "catalog.events.>",
        1,
        drained=mongo_outbox_drained(db["products"]),
    )
    assert body(msg)["name"] == "Pen"
    doc = await wait_outbox_empty(db, "pen")
    assert (doc["name"], doc["price"], doc["version"]) == ("Pen", "1.00", 1)


@pytest.mark.parametrize(
    "payload",
    [
        {"sku": "a", "name": "A"},
        {"sku": "a", "name": "A", "price": 1.5},
        {"sku": "a", "name": "A", "price": "1.234"},
        {"sku": "a", "name": "A", "price": "-1"},
        {"sku": "a", "name": "A", "price": "1e3"},
        {"sku": "a b", "name": "A", "price": "1"},
        {"sku": "a", "name": "", "price": "1"},
        {"sku": "a", "name": "A", "price": "1", "stock": 3},
    ],
)
async def test_bad_products_are_400_and_write_nothing(
    client: AsyncTestClient, db: MongoDatabase, payload: dict[str, object]
) -> None:
    response = await client.post("/products", json=payload)

    assert response.status_code == 400, response.text
    assert await db["products"].count_documents({}) == 0


@pytest.mark.parametrize(
    "payload", [{}, {"price": None}, {"price": "abc"}, {"name": "x" * 201}, {"colour": "red"}]
)
async def test_bad_changes_are_400_and_change_nothing(
    client: AsyncTestClient, db: MongoDatabase, payload: dict[str, object]
) -> None:
    await client.post("/products", json={"sku": "cup", "name": "Cup", "price": "3.00"})

    response = await client.patch("/products/cup", json=payload)

    assert response.status_code == 400, response.text
    assert (await document(db, "cup"))["version"] == 1


async def test_unknown_products_are_404(client: AsyncTestClient) -> None:
    assert (await client.get("/products/nothing")).status_code == 404
    assert (await client.patch("/products/nothing", json={"price": "1"})).status_code == 404


async def test_concurrent_changes_keep_one_version_per_change_and_one_event_each(
    settings: ServiceSettings, nc: Client, db: MongoDatabase
) -> None:
    async with concurrent_client(build, settings) as client:
        created = await client.post(
            "/products", json={"sku": "lamp", "name": "Lamp", "price": "10.00"}
        )
        assert created.status_code == 201
        prices = [f"{11 + i}.00" for i in range(12)]

        responses: list[httpx.Response] = await asyncio.gather(
            *(client.patch("/products/lamp", json={"price": p}) for p in prices)
        )

        assert {r.status_code for r in responses} <= {200, 409}
        won = [r.json() for r in responses if r.status_code == 200]
        assert won, "no change got through"
        assert sorted(r["version"] for r in won) == list(range(2, 2 + len(won)))
        msgs = await published(
            nc.jetstream(),
            "CATALOG",
            "catalog.events.>",
            1 + len(won),
            drained=mongo_outbox_drained(db["products"]),
        )
        doc = await wait_outbox_empty(db, "lamp")

    changes = [body(m) for m in msgs[1:]]
    assert {event_name(m) for m in msgs[1:]} == {"ProductPriceChanged"}
    assert [c["version"] for c in changes] == list(range(2, 2 + len(won)))
    # Each change starts from the price the one before it set: no lost update.
    previous = "10.00"
    for change in changes:
        assert change["previous_price"] == previous
        previous = change["price"]
    assert sorted(c["price"] for c in changes) == sorted(r["price"] for r in won)
    assert (doc["version"], doc["price"]) == (1 + len(won), previous)


async def test_a_change_read_at_a_stale_version_writes_nothing(db: MongoDatabase) -> None:
    store = MongoProductStore(db)
    unit = MongoUnitOfWork(db, MongoProductStore)
    now = datetime.now(UTC)
    await add_product(unit, "desk", "Desk", Decimal("100.00"), now)
    stale = await store.get("desk")
    assert stale is not None
    await change_product(unit, "desk", now, price=Decimal("120.00"))

    late, events = stale.product.change(now, name="Standing desk")
    saved = await store.save(stale, late, events)

    assert saved is None
    doc = await document(db, "desk")
    assert (doc["name"], doc["price"], doc["version"]) == ("Desk", "120.00", 2)
    staged = sorted(doc["outbox"].values(), key=lambda entry: entry["seq"])
    assert [(e["event_type"], e["seq"]) for e in staged] == [
        ("ProductCreated", 1),
        ("ProductPriceChanged", 2),
    ]
    assert (doc["outbox_pending"], doc["outbox_seq"]) == (2, 2)

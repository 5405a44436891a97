"""The order service's price replica on real PostgreSQL: catalog events go through order's
own handlers inside the transactional inbox; the newest catalog version wins whatever the
arrival order, a redelivery changes nothing, and a manual price lasts until the catalog's
next change. Then, end to end over NATS: a product created and repriced in the catalog is
what the order service charges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.bootstrap import build as build_catalog
from event_samples import product_created, product_price_changed
from order.adapters import MIGRATIONS
from order.adapters import PostgresOrderStore as OrderStore
from order.bootstrap import build as build_order
from polysaga.events.envelope import Envelope, new_event
from polysaga.messaging.consumer import EventHandler
from polysaga.persistence import inbox, outbox
from polysaga.persistence.database import create_engine, migrate
from polysaga.persistence.inbox import transactional_runner
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from service_client import service_client

SKU = "kettle"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    await migrate(engine, [*outbox.MIGRATIONS, *inbox.MIGRATIONS, *MIGRATIONS])
    yield engine
    await engine.dispose()


@pytest.fixture
def handlers(database_url: str) -> dict[str, EventHandler]:
    settings = ServiceSettings(service_name="order", database_url=database_url)
    return dict(build_order(settings).event_handlers)


def created(price: str) -> Envelope[Any]:
    return new_event(product_created(sku=SKU, name="Kettle", price=price, version=1))


def repriced(price: str, previous: str, version: int) -> Envelope[Any]:
    return new_event(
        product_price_changed(sku=SKU, price=price, previous_price=previous, version=version)
    )


async def feed(
    engine: AsyncEngine, handlers: dict[str, EventHandler], event: Envelope[Any]
) -> bool:
    return await transactional_runner(engine)("order", event, handlers[event.name])


async def replica(engine: AsyncEngine) -> tuple[Decimal, int] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT price, version FROM product_prices WHERE sku = :sku"), {"sku": SKU}
            )
        ).first()
    return None if row is None else (Decimal(row.price), row.version)


def lag_observations() -> float:
    value = REGISTRY.get_sample_value(
        "polysaga_consistency_lag_seconds_count", {"read_model": "order-prices"}
    )
    return value or 0.0


async def test_an_older_price_change_does_not_overwrite_a_newer_one(
    engine: AsyncEngine, handlers: dict[str, EventHandler]
) -> None:
    observed = lag_observations()

    assert await feed(engine, handlers, created("10.00"))
    assert await replica(engine) == (Decimal("10.00"), 1)
    assert await feed(engine, handlers, repriced("12.00", "11.00", 3))
    assert await feed(engine, handlers, repriced("11.00", "10.00", 2))  # arrives late

    assert await replica(engine) == (Decimal("12.00"), 3)
    assert lag_observations() == observed + 3


async def test_a_creation_arriving_after_a_price_change_does_not_win(
    engine: AsyncEngine, handlers: dict[str, EventHandler]
) -> None:
    await feed(engine, handlers, repriced("15.00", "10.00", 2))
    await feed(engine, handlers, created("10.00"))

    assert await replica(engine) == (Decimal("15.00"), 2)


async def test_a_redelivered_event_changes_nothing(
    engine: AsyncEngine, handlers: dict[str, EventHandler]
) -> None:
    first = created("10.00")
    change = repriced("12.00", "10.00", 2)
    for event in (first, change):
        assert await feed(engine, handlers, event)

    # The same delivery again is stopped by the inbox; a re-publish with a new id of the
    # same change (or of the creation) by the version guard.
    assert not await feed(engine, handlers, first)
    assert await feed(engine, handlers, created("10.00"))
    assert await feed(engine, handlers, repriced("12.00", "10.00", 2))

    assert await replica(engine) == (Decimal("12.00"), 2)
    async with engine.connect() as conn:
        handled = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
    assert handled == 4


async def test_a_manual_price_holds_until_the_catalogs_next_change(
    engine: AsyncEngine, handlers: dict[str, EventHandler]
) -> None:
    async with engine.begin() as conn:
        await OrderStore(conn).set_price(SKU, Decimal("9.00"))
    assert await replica(engine) == (Decimal("9.00"), 0)

    await feed(engine, handlers, created("10.00"))
    assert await replica(engine) == (Decimal("10.00"), 1)
    async with engine.begin() as conn:
        await OrderStore(conn).set_price(SKU, Decimal("8.00"))
    await feed(engine, handlers, created("10.00"))  # a re-publish: no newer version
    assert await replica(engine) == (Decimal("8.00"), 1)

    await feed(engine, handlers, repriced("11.00", "10.00", 2))
    assert await replica(engine) == (Decimal("11.00"), 2)


async def test_the_order_service_prices_orders_with_what_the_catalog_published(
    database_url: str, mongo_url: str, nats_server: NatsServer
) -> None:
    catalog_settings = ServiceSettings(
        service_name="catalog",
        mongo_url=mongo_url,
        nats_url=nats_server.url,
        relay_poll_interval_s=0.1,
    )
    order_settings = ServiceSettings(
        service_name="order",
        database_url=database_url,
        nats_url=nats_server.url,
        relay_poll_interval_s=0.1,
    )

    async with (
        service_client(build_catalog, catalog_settings) as catalog,
        service_client(build_order, order_settings) as order,
    ):
        unknown = await order.post(
            "/orders", json={"user_id": "u1", "items": [{"sku": SKU, "quantity": 1}]}
        )
        assert unknown.status_code == 422
        new = await catalog.post("/products", json={"sku": SKU, "name": "Kettle", "price": "20"})
        assert new.status_code == 201
        await wait_for_price(order, "20.00")
        assert (await catalog.patch(f"/products/{SKU}", json={"price": "24.50"})).status_code == 200
        await wait_for_price(order, "24.50")

        placed = await order.post(
            "/orders", json={"user_id": "u1", "items": [{"sku": SKU, "quantity": 2}]}
        )
        assert placed.status_code == 202, placed.text
        got = await order.get(f"/orders/{placed.json()['order_id']}")
        assert got.json()["total"] == "49.00"


async def wait_for_price(order: AsyncTestClient, price: str, timeout_s: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        response = await order.get(f"/prices/{SKU}")
        if response.status_code == 200 and response.json()["price"] == price:
            return
        assert loop.time() < deadline, f"order never learned {price}: {response.text}"
        await asyncio.sleep(0.1)

"""The order's whole life through the order service on real PostgreSQL and NATS: a confirmed
order ships with its tracking number and is then delivered, a shipment from any other status
is a 409 that writes nothing, the state as of any moment of the life is replayed, and the
default snapshot cadence is reached and replays to the same order as the full stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from event_samples import payment_processed
from order.adapters import PostgresOrderStore
from order.bootstrap import build as build_order
from polysaga.events.envelope import new_event
from polysaga.persistence.database import create_engine
from polysaga.persistence.inbox import transactional_runner
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from service_client import service_client

pytestmark = pytest.mark.integration

SKU = "teapot"


@pytest.fixture
def settings(database_url: str, nats_server: NatsServer) -> ServiceSettings:
    return ServiceSettings(
        service_name="order",
        database_url=database_url,
        nats_url=nats_server.url,
        relay_poll_interval_s=0.1,
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


async def events_of(order: AsyncTestClient, order_id: str) -> list[str]:
    events: list[dict[str, Any]] = (await order.get(f"/orders/{order_id}/events")).json()
    return [e["type"] for e in events]


async def test_an_order_is_paid_confirmed_shipped_and_delivered(
    settings: ServiceSettings, engine: AsyncEngine
) -> None:
    async with service_client(build_order, settings) as order:
        assert (await order.put(f"/prices/{SKU}", json={"price": "12.50"})).status_code == 200
        placed = await order.post(
            "/orders", json={"user_id": "u-life", "items": [{"sku": SKU, "quantity": 2}]}
        )
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["order_id"]

        early = await order.post(f"/orders/{order_id}/shipment", json={"tracking_number": "1Z9"})
        assert early.status_code == 409, early.text
        assert early.headers["content-type"].startswith("application/problem+json")
        assert "PENDING" in early.json()["detail"]
        assert (await order.post(f"/orders/{order_id}/delivery")).status_code == 409
        assert await events_of(order, order_id) == ["OrderPlaced.v1"]  # nothing written

        paid = new_event(
            payment_processed(order_id=uuid.UUID(order_id), user_id="u-life", amount="25.00")
        )
        handler = build_order(settings).event_handlers["PaymentProcessed"]
        assert await transactional_runner(engine)("order", paid, handler)
        confirmed_at = datetime.now(UTC)
        await asyncio.sleep(0.01)

        bad = await order.post(f"/orders/{order_id}/shipment", json={"tracking_number": "a b\n"})
        assert bad.status_code == 400
        refused = await order.post(
            f"/orders/{order_id}/shipment",
            json={"tracking_number": "1Z9"},
            headers={"Authorization": "Bearer not-the-operator"},
        )
        assert refused.status_code == 401
        shipped = await order.post(
            f"/orders/{order_id}/shipment", json={"tracking_number": "1Z-999-AA1"}
        )
        assert shipped.status_code == 200, shipped.text
        assert (shipped.json()["status"], shipped.json()["tracking_number"]) == (
            "SHIPPED",
            "1Z-999-AA1",
        )
        again = await order.post(f"/orders/{order_id}/shipment", json={"tracking_number": "2X"})
        assert again.status_code == 409
        shipped_at = datetime.now(UTC)
        await asyncio.sleep(0.01)
        delivered = await order.post(f"/orders/{order_id}/delivery")
        assert delivered.status_code == 200 and delivered.json()["status"] == "DELIVERED"

        assert await events_of(order, order_id) == [
            "OrderPlaced.v1",
            "PaymentReceived.v1",
            "OrderConfirmed.v1",
            "OrderShipped.v1",
            "OrderDelivered.v1",
        ]
        now = (await order.get(f"/orders/{order_id}")).json()
        assert (now["status"], now["version"]) == ("DELIVERED", 5)
        assert now["paid_at"] is not None
        assert now["tracking_number"] == "1Z-999-AA1"
        for as_of, status in ((confirmed_at, "CONFIRMED"), (shipped_at, "SHIPPED")):
            then = await order.get(f"/orders/{order_id}", params={"as_of": as_of.isoformat()})
            assert then.json()["status"] == status

    # The default cadence snapshotted this order, and the snapshot replays to the same order.
    async with engine.connect() as conn:
        versions = (
            await conn.execute(
                text("SELECT version FROM order_snapshots WHERE order_id = :id"), {"id": order_id}
            )
        ).scalars()
        assert list(versions) == [settings.snapshot_every]
        from_snapshot = await PostgresOrderStore(conn).load(order_id)
        await conn.execute(
            text("DELETE FROM order_snapshots WHERE order_id = :id"), {"id": order_id}
        )
        from_events = await PostgresOrderStore(conn).load(order_id)
        await conn.rollback()
    assert from_snapshot is not None and from_snapshot == from_events

"""The sales service in-process on real NATS JetStream and PostgreSQL: an order counts once
however often its confirmation arrives, figures come per product, customer and day, bad
input is a 400, and a rebuild from the stream reproduces the live figures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.js import JetStreamContext

import event_samples as samples
from polysaga.app import create_app
from polysaga.events import payloads as P
from polysaga.events.envelope import NATS_MSG_ID, Envelope, encode_body, new_event, to_headers
from polysaga.messaging.connection import ensure_streams
from polysaga.money import format_money
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from sales.bootstrap import build
from waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = "sales-test-operator-token"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    context = nc.jetstream()
    await ensure_streams(context)
    yield context
    await nc.close()


@pytest.fixture
async def service(
    database_url: str, nats_server: NatsServer, js: JetStreamContext
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = ServiceSettings(
        service_name="sales",
        database_url=database_url,
        nats_url=nats_server.url,
        operator_token=TOKEN,
    )
    async with AsyncTestClient(create_app(build(settings), settings)) as client:
        yield client


def confirmed(user: str, *lines: tuple[str, int, str]) -> Envelope[P.OrderConfirmed]:
    total = sum((q * Decimal(p) for _, q, p in lines), Decimal("0"))
    body = samples.order_confirmed(
        user_id=user, total=format_money(total), items=samples.order_lines(*lines)
    )
    return new_event(body)


async def publish(js: JetStreamContext, event: Envelope[Any], msg_id: str | None = None) -> None:
    headers = to_headers(event)
    if msg_id:
        headers[NATS_MSG_ID] = msg_id
    await js.publish(event.subject, encode_body(event.data), headers=headers)


async def settled(js: JetStreamContext) -> bool:
    info = await js.consumer_info("ORDERS", "sales")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def test_an_order_counts_once_per_product_customer_and_day(
    service: AsyncTestClient[Any], js: JetStreamContext
) -> None:
    first = confirmed("ann", ("TEA", 2, "1.50"), ("MUG", 1, "4.00"))
    second = confirmed("ann", ("TEA", 1, "1.50"))
    for event in (first, second):
        await publish(js, event)
    # The same confirmation again, under a new Nats-Msg-Id (the inbox absorbs it), and the
    # same order under a new event id (its row in sales_orders does).
    await publish(js, first, msg_id=str(uuid.uuid4()))
    again = new_event(first.data)
    await publish(js, again)

    async def counted() -> bool:
        return (await service.get("/sales/customers/ann")).json()["orders"] == 2 and await settled(
            js
        )

    await eventually(counted)
    assert (await service.get("/sales/products/TEA")).json() == {
        "sku": "TEA",
        "units": 3,
        "revenue": "4.50",
    }
    assert (await service.get("/sales/products/MUG")).json()["revenue"] == "4.00"
    assert (await service.get("/sales/customers/ann")).json() == {
        "user_id": "ann",
        "orders": 2,
        "spent": "8.50",
    }
    day = first.time.date().isoformat()
    assert (await service.get(f"/sales/days/{day}")).json() == {
        "day": day,
        "orders": 2,
        "units": 4,
        "revenue": "8.50",
    }
    # Nothing sold: zeros, not an error; malformed: a 400 problem.
    assert (await service.get("/sales/products/NONE")).json()["units"] == 0
    assert (await service.get("/sales/days/1999-01-01")).json()["orders"] == 0
    for bad in ("/sales/days/2026-13-01", "/sales/days/yesterday", "/sales/products/%20"):
        response = await service.get(bad)
        assert response.status_code == 400, bad
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_rebuild_reproduces_the_live_figures_and_keeps_the_replaced_generation(
    service: AsyncTestClient[Any], js: JetStreamContext
) -> None:
    for i in range(12):
        await publish(js, confirmed(f"user-{i % 3}", ("SKU-A", 1 + i % 2, "2.00")))

    async def all_counted() -> bool:
        digest = (await service.get("/admin/digest", headers=OPERATOR)).json()
        return bool(digest["count"] == 12) and await settled(js)

    await eventually(all_counted)
    before = (await service.get("/admin/digest", headers=OPERATOR)).json()
    assert (await service.post("/admin/rebuild")).status_code == 401  # the operator's only
    rebuilt = (await service.post("/admin/rebuild", headers=OPERATOR)).json()
    assert rebuilt["generation"] == before["generation"] + 1
    assert rebuilt["orders"] == 12 and rebuilt["events_applied"] == 12
    assert rebuilt["digest"] == rebuilt["previous_digest"] == before["digest"]
    after = (await service.get("/admin/digest", headers=OPERATOR)).json()
    assert (after["generation"], after["digest"]) == (rebuilt["generation"], before["digest"])
    old = await service.get(f"/admin/digest?generation={before['generation']}", headers=OPERATOR)
    assert old.json()["digest"] == before["digest"]
    # Live again, into the new generation.
    await publish(js, confirmed("user-0", ("SKU-A", 5, "2.00")))

    async def thirteen() -> bool:
        return bool((await service.get("/sales/products/SKU-A")).json()["units"] == 23)

    await eventually(thirteen)

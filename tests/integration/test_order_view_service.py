"""The order view as a service, in process, on real NATS JetStream and FerretDB: events
published to the streams become summaries; read-your-writes waits for a version or answers
503 with Retry-After within the bounded wait; a user's orders page newest first; a rebuild
produces a generation identical to the live one, serves from it, and loses no event that
arrives while it runs.

AsyncTestClient runs the app in a portal thread and blocks the test's event loop for the
length of each request; what must happen *during* a request is published from a thread."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from forged_events import forge
from order_view.bootstrap import build
from order_view_scenario import ADA, Scenario, publish, saga_scenario, user_id
from polysaga.events import declaration
from polysaga.events.envelope import Envelope, encode_body, to_headers
from polysaga.messaging.connection import ensure_streams
from polysaga.mongo.client import MongoDatabase, connect
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from service_client import service_client
from waiting import eventually

pytestmark = pytest.mark.integration

WAIT_MAX_S = 0.5


@dataclass
class Service:
    client: AsyncTestClient[Any]
    js: JetStreamContext
    db: MongoDatabase
    nats_url: str

    async def publish_all(self, scenario: Scenario) -> None:
        for event in scenario.events:
            await publish(self.js, event)

    async def caught_up(self) -> bool:
        """The live consumers have handled and acknowledged everything in the streams."""
        for context in declaration.consumed_by("order-view"):
            info = await self.js.consumer_info(context.stream, "order-view")
            if info.num_pending or info.num_ack_pending:
                return False
        return True


@pytest.fixture
async def service(mongo_url: str, nats_server: NatsServer) -> AsyncIterator[Service]:
    settings = ServiceSettings(
        service_name="order-view",
        mongo_url=mongo_url,
        nats_url=nats_server.url,
        view_wait_max_s=WAIT_MAX_S,
    )
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    mongo, db = connect(mongo_url)
    try:
        async with service_client(build, settings) as client:
            yield Service(client, js, db, nats_server.url)
    finally:
        await mongo.close()
        await nc.close()


class BackgroundPublisher(threading.Thread):
    """Publishes events from its own thread and connection, ``pause_s`` apart, after
    ``delay_s``: it keeps going while the test's loop is blocked in a request."""

    def __init__(
        self, nats_url: str, events: list[Envelope[Any]], *, delay_s: float, pause_s: float = 0.0
    ) -> None:
        super().__init__(daemon=True)
        self.nats_url, self.events, self.delay_s, self.pause_s = nats_url, events, delay_s, pause_s
        self.published = 0

    def run(self) -> None:
        asyncio.run(self._publish())

    async def _publish(self) -> None:
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            await asyncio.sleep(self.delay_s)
            for event in self.events:
                await publish(js, event)
                self.published += 1
                await asyncio.sleep(self.pause_s)
        finally:
            await nc.close()


def now_scenario(seed: int) -> Scenario:
    return Scenario(random.Random(seed), clock=datetime.now(UTC))


def lag_count() -> float:
    value = REGISTRY.get_sample_value(
        "polysaga_consistency_lag_seconds_count", {"read_model": "order-view"}
    )
    return value or 0.0


async def test_a_summary_appears_with_user_names_and_history(service: Service) -> None:
    s = now_scenario(1)
    s.user(user_id("1"), "Ada Lovelace", 1)
    s.product("SKU-1", "Kettle", "20.00")
    s.product("sku.2", "Teapot", "12.50")
    order_id = s.order(user_id("1"), [("SKU-1", 2, "20.00"), ("sku.2", 1, "12.50")], "confirmed")
    lag_before = lag_count()
    await service.publish_all(s)

    async def confirmed() -> bool:
        response = await service.client.get(f"/orders/{order_id}/summary")
        return response.status_code == 200 and response.json()["status"] == "CONFIRMED"

    await eventually(confirmed)
    await eventually(service.caught_up)
    body = (await service.client.get(f"/orders/{order_id}/summary")).json()
    assert body["user_id"] == user_id("1")
    assert body["user"] == {"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}
    assert [(i["sku"], i["name"], i["quantity"]) for i in body["items"]] == [
        ("SKU-1", "Kettle", 2),
        ("sku.2", "Teapot", 1),
    ]
    assert (body["item_count"], body["total"], body["order_version"]) == (3, "52.50", 3)
    assert body["cancel_reason"] is None
    assert [h["step"] for h in body["history"]] == [
        "OrderPlaced",
        "StockReserved",
        "PaymentProcessed",
        "PaymentReceived",
        "OrderConfirmed",
    ]
    assert body["history"][2]["detail"] == "amount 52.50"
    assert lag_count() - lag_before == len(s.events)  # every applied event is measured


async def test_a_shipment_and_a_delivery_move_the_summary_on(service: Service) -> None:
    s = now_scenario(7)
    order_id = s.order("user-7", [("SKU-1", 1, "20.00")], "delivered")
    *saga, shipped, delivered = s.events
    for event in saga:
        await publish(service.js, event)
    await publish(service.js, shipped)
    # The order's version counts its shipment (placed, paid, confirmed, shipped): wait for it.
    response = await service.client.get(f"/orders/{order_id}/summary", params={"min_version": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["order_version"]) == ("SHIPPED", 4)
    assert body["tracking_number"] == shipped.data.tracking_number
    assert body["history"][-1] == {
        "step": "OrderShipped",
        "at": body["history"][-1]["at"],
        "detail": f"tracking {shipped.data.tracking_number}",
    }
    await publish(service.js, delivered)
    await publish(service.js, shipped)  # a redelivery changes nothing
    response = await service.client.get(f"/orders/{order_id}/summary", params={"min_version": 5})
    body = response.json()
    assert (body["status"], body["order_version"]) == ("DELIVERED", 5)
    assert [h["step"] for h in body["history"]][-2:] == ["OrderShipped", "OrderDelivered"]
    await eventually(service.caught_up)
    assert (await service.client.get(f"/orders/{order_id}/summary")).json() == body


async def test_read_your_writes_waits_for_a_version_or_answers_503(service: Service) -> None:
    unknown = await service.client.get(f"/orders/{uuid.uuid4()}/summary")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")

    s = now_scenario(2)
    order_id = s.order("user-2", [("SKU-1", 1, "20.00")], "confirmed")
    placed, *rest = s.events
    await publish(service.js, placed)
    first = await service.client.get(f"/orders/{order_id}/summary", params={"min_version": 1})
    assert first.status_code == 200  # waited for the view to catch up, if it had to
    assert first.json()["order_version"] == 1

    started = time.monotonic()
    too_new = await service.client.get(f"/orders/{order_id}/summary", params={"min_version": 2})
    elapsed = time.monotonic() - started
    assert too_new.status_code == 503
    assert too_new.headers["retry-after"] == "1"
    assert too_new.json()["type"].endswith("/view-not-caught-up")
    assert WAIT_MAX_S * 0.9 <= elapsed < WAIT_MAX_S + 1.5

    # A reader that asks first and whose write lands during the wait gets it.
    publisher = BackgroundPublisher(service.nats_url, rest, delay_s=0.1)
    publisher.start()
    # Placed, paid, confirmed: the confirmation is the order's third version.
    answered = await service.client.get(f"/orders/{order_id}/summary", params={"min_version": 3})
    publisher.join()
    assert answered.status_code == 200
    assert (answered.json()["order_version"], answered.json()["status"]) == (3, "CONFIRMED")

    for bad in ("0", "-1", "abc", "1.5"):
        response = await service.client.get(
            f"/orders/{order_id}/summary", params={"min_version": bad}
        )
        assert response.status_code == 400, bad


async def test_a_users_orders_page_newest_first(service: Service) -> None:
    s = now_scenario(3)
    placed = [s.order("user-p", [("SKU-1", 1, "20.00")], "pending") for _ in range(5)]
    s.order("user-other", [("SKU-1", 1, "20.00")], "pending")
    await service.publish_all(s)
    await eventually(service.caught_up)

    newest_first = list(reversed(placed))
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        response = await service.client.get(
            "/users/user-p/orders", params={"limit": 2, "offset": offset}
        )
        assert response.status_code == 200
        page = response.json()
        seen += [o["order_id"] for o in page["orders"]]
        assert all(o["user_id"] == "user-p" for o in page["orders"])
        offset = page["next_offset"]
    assert seen == newest_first

    empty = (await service.client.get("/users/nobody/orders")).json()
    assert empty == {"orders": [], "next_offset": None}
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"limit": "x"}):
        response = await service.client.get("/users/user-p/orders", params=params)
        assert response.status_code == 400, params
    assert (await service.client.get("/users/bad%20id!/orders")).status_code == 400


async def test_a_rebuild_swaps_in_an_identical_generation_and_loses_no_live_event(
    service: Service,
) -> None:
    client = service.client
    first = saga_scenario(seed=7, start=datetime.now(UTC))
    await service.publish_all(first)
    await eventually(service.caught_up)
    live = (await client.get("/admin/digest")).json()
    assert (live["generation"], live["count"]) == (1, len(first.orders))

    rebuilt = await client.post("/admin/rebuild")
    assert rebuilt.status_code == 200
    result = rebuilt.json()
    assert result["generation"] == 2
    assert result["events_applied"] == len(first.events)
    assert result["orders"] == len(first.orders)
    second = (await client.get("/admin/digest", params={"generation": 2})).json()
    assert second == {**live, "generation": 2}
    assert (await client.get("/admin/digest")).json()["generation"] == 2

    # Served from the new generation: a new order lands there, not in the old one.
    s = now_scenario(9)
    order_id = s.order(ADA, [("SKU-1", 1, "20.00")], "pending")
    await service.publish_all(s)
    await eventually(service.caught_up)
    summary = await client.get(f"/orders/{order_id}/summary")
    assert summary.status_code == 200
    assert summary.json()["user"]["name"] == "Ada, Countess of Lovelace"
    assert await service.db["summaries_g2"].find_one({"_id": order_id}) is not None
    assert await service.db["summaries_g1"].find_one({"_id": order_id}) is None

    # Events keep arriving while generation 3 is built; none may be missing from it.
    during = saga_scenario(seed=8, start=datetime.now(UTC))
    publisher = BackgroundPublisher(service.nats_url, during.events, delay_s=0.0, pause_s=0.01)
    publisher.start()
    await eventually(_started(publisher))
    published_at_start = publisher.published
    third = await client.post("/admin/rebuild")
    published_at_end = publisher.published
    publisher.join()
    assert third.status_code == 200 and third.json()["generation"] == 3
    assert published_at_start < published_at_end  # the rebuild overlapped live traffic
    assert published_at_start < len(during.events)
    await eventually(service.caught_up)

    at_rest = await client.post("/admin/rebuild")  # generation 4, built with nothing moving
    assert at_rest.status_code == 200
    expected_orders = len(first.orders) + len(s.orders) + len(during.orders)
    assert at_rest.json()["orders"] == expected_orders
    g3 = (await client.get("/admin/digest", params={"generation": 3})).json()
    g4 = (await client.get("/admin/digest", params={"generation": 4})).json()
    assert g3["count"] == expected_orders
    assert g3["digest"] == g4["digest"]
    # Kept: the live generation and the one it replaced; older ones are dropped.
    assert (await client.get("/admin/digest", params={"generation": 2})).status_code == 404
    assert (await client.get("/admin/digest", params={"generation": 0})).status_code == 400


def _started(publisher: BackgroundPublisher) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return publisher.published > 0

    return check


async def test_a_rebuild_names_the_streams_whose_history_is_gone(service: Service) -> None:
    s = now_scenario(10)
    aged_out = s.order("user-t", [("SKU-1", 1, "20.00")], "pending")
    recent = s.order("user-t", [("SKU-1", 1, "20.00")], "pending")
    await service.publish_all(s)
    await eventually(service.caught_up)
    # As max_age would: the first OrderPlaced ages out of ORDERS.
    await service.js.purge_stream("ORDERS", seq=2)

    result = (await service.client.post("/admin/rebuild")).json()
    assert result["truncated_streams"] == ["ORDERS"]
    assert result["orders"] == 1
    assert (await service.client.get(f"/orders/{recent}/summary")).status_code == 200
    assert (await service.client.get(f"/orders/{aged_out}/summary")).status_code == 404


def refused_count(step: str) -> float:
    value = REGISTRY.get_sample_value(
        "polysaga_saga_steps_refused_total", {"read_model": "order-view", "step": step}
    )
    return value or 0.0


# SKUs no MongoDB field name can hold as they are; a forged or buggy event may carry them.
HOSTILE_SKUS = ["", "$", "$x", ".", "..", "X\n", "a\u0000b", "é", "a b", "%2E"]


async def test_skus_no_field_name_can_hold_flow_through_the_view_and_its_rebuild(
    service: Service,
) -> None:
    """Issue 14, class 5: every SKU the catalog accepts (dots, runs of dots, a trailing dot,
    64 characters) reaches every summary and survives a rebuild; products and orders whose
    SKU no field name can hold (empty, '$', '.', a newline: a forged or buggy producer)
    poison nothing: each such event is set aside, every other order is served, and a
    rebuild answers 200, skips exactly those and reproduces the view."""
    s = now_scenario(14)
    skus = ["a..b", "a.", "x-_", "A.B.C", "T" * 64, "9", "sku.with.dots"]
    orders = {}
    for index, sku in enumerate(skus):
        s.product(sku, f"product {index}", "1.00")
        orders[sku] = s.order("user-k", [(sku, 1, "1.00")], "confirmed")
    await service.publish_all(s)
    for sku in HOSTILE_SKUS:
        product = {"sku": sku, "name": "Forged", "price": "1.00", "version": 1}
        await forge(service.js, "ProductCreated", sku, msgspec.json.encode(product))
        order_id = str(uuid.uuid4())
        placed = {
            "order_id": order_id,
            "user_id": "user-k",
            "items": [{"sku": sku, "quantity": 1, "unit_price": "1.00"}],
            "total": "1.00",
            "placed_at": datetime.now(UTC).isoformat(),
            "deadline_at": datetime.now(UTC).isoformat(),
        }
        await forge(service.js, "OrderPlaced", order_id, msgspec.json.encode(placed))
    await eventually(service.caught_up)
    for index, sku in enumerate(skus):
        response = await service.client.get(f"/orders/{orders[sku]}/summary")
        assert response.status_code == 200, (sku, response.text)
        assert [(i["sku"], i["name"]) for i in response.json()["items"]] == [
            (sku, f"product {index}")
        ]
    live = (await service.client.get("/admin/digest")).json()
    rebuilt = await service.client.post("/admin/rebuild")
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["events_skipped"] == 2 * len(HOSTILE_SKUS)
    assert rebuilt.json()["orders"] == len(skus)
    again = (await service.client.get("/admin/digest")).json()
    assert (again["count"], again["digest"]) == (live["count"], live["digest"])


async def test_a_rebuild_skips_and_counts_events_it_cannot_apply(service: Service) -> None:
    """Issue 14, class 5: whatever a stream holds (bytes that are not UTF-8, JSON of the
    wrong shape, a NUL where text goes), a rebuild answers 200 with the rest of the view
    rebuilt and says how many events it skipped."""
    s = now_scenario(15)
    s.product("good-1", "Kettle", "1.00")
    order_id = s.order("user-n", [("good-1", 1, "1.00")], "confirmed")
    await service.publish_all(s)
    poison = [
        # A JSON-escaped NUL in a name (the raw literal keeps the backslash).
        (
            "ProductCreated",
            rb'{"sku": "bad-1", "name": "Ket\u0000tle", "price": "1",'
            rb' "version": 1}',
        ),
        ("ProductRenamed", b'{"sku": "bad-2", "version": 2}'),
        ("ProductCreated", b'{"sku": "bad-3", "name": ["x"], "price": 1, "version": 1}'),
        ("UserRegistered", b"\xff\xfe not even UTF-8"),
        ("OrderConfirmed", b"[" * 5000 + b"]" * 5000),
    ]
    for name, body in poison:
        await forge(service.js, name, "poison", body)
    await eventually(service.caught_up, timeout_s=60)
    response = await service.client.post("/admin/rebuild")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["events_skipped"] == len(poison)
    assert result["events_applied"] == len(s.events)
    summary = await service.client.get(f"/orders/{order_id}/summary")
    assert summary.status_code == 200
    assert summary.json()["items"][0]["name"] == "Kettle"


async def test_a_step_the_saga_does_not_allow_is_not_shown_and_is_counted(
    service: Service,
) -> None:
    """Issue 14, class 9: a StockReservationFailed after OrderConfirmed (a producer's own
    credentials can publish one) is not in the order's history, is counted once in
    ``polysaga_saga_steps_refused_total``, and a rebuild agrees with the live view, also
    with forged steps of the same user's for orders never placed (never served, and left
    out of the digest: a rebuild copies the user into them, the live view cannot)."""
    s = now_scenario(16)
    user = user_id("user-9")
    s.user(user, "Nine", 1)
    order_id = s.order(user, [("SKU-1", 1, "20.00")], "confirmed")
    for _ in range(3):
        ghost = s.uid()
        lines = [{"sku": "SKU-1", "quantity": 1}]
        reserved = {"order_id": ghost, "user_id": user, "items": lines, "total": "5.00"}
        s.emit("StockReserved", ghost, reserved)
    await service.publish_all(s)
    await eventually(service.caught_up)
    before = refused_count("StockReservationFailed")
    forged = s.emit("StockReservationFailed", order_id, {"order_id": order_id, "reason": "x"})
    await publish(service.js, forged)
    await eventually(service.caught_up)
    assert refused_count("StockReservationFailed") == before + 1
    # The same event again (a redelivery under another Nats-Msg-Id) is not counted twice.
    await service.js.publish(
        forged.subject, encode_body(forged.data), headers={**to_headers(forged), "Nats-Msg-Id": "x"}
    )
    await eventually(service.caught_up)
    assert refused_count("StockReservationFailed") == before + 1

    body = (await service.client.get(f"/orders/{order_id}/summary")).json()
    assert [h["step"] for h in body["history"]] == [
        "OrderPlaced",
        "StockReserved",
        "PaymentProcessed",
        "PaymentReceived",
        "OrderConfirmed",
    ]
    live = (await service.client.get("/admin/digest")).json()
    assert (await service.client.post("/admin/rebuild")).status_code == 200
    assert (await service.client.get("/admin/digest")).json()["digest"] == live["digest"]


async def test_a_rebuild_that_cannot_read_the_streams_is_a_503_and_changes_nothing(
    service: Service,
) -> None:
    """Issue 14, class 5: ``POST /admin/rebuild`` never answers 500; history it cannot read
    (here a stream gone) is a 503 with Retry-After, and the live generation stays."""
    s = now_scenario(17)
    order_id = s.order("user-r", [("SKU-1", 1, "20.00")], "confirmed")
    await service.publish_all(s)
    await eventually(service.caught_up)
    live = (await service.client.get("/admin/digest")).json()
    await service.js.delete_stream("PAYMENTS")
    response = await service.client.post("/admin/rebuild")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/event-history-unavailable")
    assert (await service.client.get("/admin/digest")).json() == live
    assert (await service.client.get(f"/orders/{order_id}/summary")).status_code == 200

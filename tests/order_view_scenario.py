"""Realistic event sets for the order view's tests: several users, products and orders, each
order taking one of the saga's paths (confirmed, payment failed, out of stock, cancelled at
the deadline with a late payment refunded, still pending), with profile updates and product
renames interleaved in time. Built from a seed, so every run sees the same ids and times."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from nats.js import JetStreamContext

from polysaga.events import declaration
from polysaga.events.envelope import Envelope, encode_body, source_of, to_headers

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def user_id(name: str) -> str:
    """A user's id (the user service makes UUIDs), the same in every run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"polysaga-test-user:{name}"))


ADA, BOB, CYD, GHOST = (user_id(n) for n in ("ada", "bob", "cyd", "ghost"))


def envelope(
    name: str, aggregate_id: str, data: dict[str, Any], *, at: datetime, event_id: str | None = None
) -> Envelope[Any]:
    """An event whose body is ``data`` checked against the declared Struct."""
    spec = declaration.spec(name)
    return Envelope(
        event_id=event_id or str(uuid.uuid4()),
        name=name,
        version=spec.version,
        source=source_of(spec),
        aggregate_id=aggregate_id,
        time=at,
        data=msgspec.convert(data, spec.payload),
    )


async def publish(js: JetStreamContext, event: Envelope[Any]) -> None:
    await js.publish(event.subject, encode_body(event.data), headers=to_headers(event))


@dataclass
class Scenario:
    rng: random.Random
    clock: datetime = T0
    events: list[Envelope[Any]] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)  # order id -> expected status

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, name: str, aggregate_id: str, data: dict[str, Any]) -> Envelope[Any]:
        self.clock += timedelta(milliseconds=self.rng.randint(3, 40))
        event = envelope(name, aggregate_id, data, at=self.clock, event_id=self.uid())
        self.events.append(event)
        return event

    def at(self) -> str:
        return self.clock.isoformat()

    def user(self, user_id: str, name: str, version: int) -> None:
        event_name = "UserRegistered" if version == 1 else "UserProfileUpdated"
        email = f"{name.lower().replace(' ', '.')}@example.com"
        self.emit(
            event_name,
            user_id,
            {"user_id": user_id, "name": name, "email": email, "version": version},
        )

    def product(self, sku: str, name: str, price: str) -> None:
        self.emit("ProductCreated", sku, {"sku": sku, "name": name, "price": price, "version": 1})

    def rename(self, sku: str, name: str, previous: str, version: int) -> None:
        data = {"sku": sku, "name": name, "previous_name": previous, "version": version}
        self.emit("ProductRenamed", sku, data)

    def reprice(self, sku: str, price: str, previous: str, version: int) -> None:
        data = {"sku": sku, "price": price, "previous_price": previous, "version": version}
        self.emit("ProductPriceChanged", sku, data)

    def order(self, user_id: str, lines: list[tuple[str, int, str]], path: str) -> str:
        """Place an order and take it down one saga path."""
        order_id = self.uid()
        items = [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines]
        total = f"{sum(q * float(p) for _, q, p in lines):.2f}"
        facts = {"order_id": order_id, "user_id": user_id, "total": total, "items": items}
        placed_at = self.clock
        self.emit(
            "OrderPlaced",
            order_id,
            {
                **facts,
                "placed_at": placed_at.isoformat(),
                "deadline_at": (placed_at + timedelta(seconds=30)).isoformat(),
            },
        )
        stock = [{"sku": s, "quantity": q} for s, q, _ in lines]
        reserved = {"order_id": order_id, "user_id": user_id, "items": stock, "total": total}
        paid = {"order_id": order_id, "user_id": user_id, "amount": total}
        who = {"order_id": order_id, "user_id": user_id}
        if path in ("confirmed", "shipped", "delivered"):
            self.emit("StockReserved", order_id, reserved)
            self.emit("PaymentProcessed", order_id, paid)
            self.emit("PaymentReceived", order_id, {**paid, "received_at": self.at()})
            self.emit("OrderConfirmed", order_id, facts)
            self.orders[order_id] = "CONFIRMED"
            if path != "confirmed":
                shipped = {"tracking_number": f"TRK-{order_id[:8]}", "shipped_at": self.at()}
                self.emit("OrderShipped", order_id, {**who, **shipped})
                self.orders[order_id] = "SHIPPED"
            if path == "delivered":
                delivered = {**who, "delivered_at": self.at()}
                self.emit("OrderDelivered", order_id, delivered)
                self.orders[order_id] = "DELIVERED"
        elif path == "payment_failed":
            self.emit("StockReserved", order_id, reserved)
            reason = "insufficient_funds"
            self.emit("PaymentFailed", order_id, {**who, "reason": reason})
            self.emit("OrderCancelled", order_id, {**facts, "reason": f"payment_failed: {reason}"})
            self.emit("StockReleased", order_id, {"order_id": order_id, "items": stock})
            self.orders[order_id] = "CANCELLED"
        elif path == "out_of_stock":
            reason = "insufficient_stock"
            self.emit("StockReservationFailed", order_id, {"order_id": order_id, "reason": reason})
            self.emit(
                "OrderCancelled", order_id, {**facts, "reason": f"stock_unavailable: {reason}"}
            )
            self.orders[order_id] = "CANCELLED"
        elif path == "deadline":
            self.emit("StockReserved", order_id, reserved)
            self.emit("OrderCancelled", order_id, {**facts, "reason": "deadline_exceeded"})
            self.emit("StockReleased", order_id, {"order_id": order_id, "items": stock})
            self.emit("PaymentProcessed", order_id, paid)
            self.emit("PaymentRefunded", order_id, paid)
            self.orders[order_id] = "CANCELLED"
        else:
            assert path == "pending"
            self.orders[order_id] = "PENDING"
        return order_id


def saga_scenario(seed: int, orders_per_user: int = 2, start: datetime = T0) -> Scenario:
    """Users and products appear, change, and are referred to, before and after the fact:
    one user registers only after ordering, one SKU has dots, one product is renamed twice,
    and one user is never registered at all."""
    s = Scenario(random.Random(seed), clock=start)
    ada, bob, cyd, ghost = ADA, BOB, CYD, GHOST
    s.user(ada, "Ada Lovelace", 1)
    s.product("SKU-1", "Kettle", "20.00")
    s.product("sku.with.dots", "Teapot", "12.50")
    s.user(bob, "Bob Ross", 1)
    paths = [
        "confirmed",
        "payment_failed",
        "out_of_stock",
        "deadline",
        "pending",
        "shipped",
        "delivered",
    ]
    lines = [("SKU-1", 1, "20.00"), ("sku.with.dots", 2, "12.50"), ("SKU-3", 3, "5.00")]
    for i in range(orders_per_user):
        for user in (ada, bob, cyd, ghost):
            picked = s.rng.sample(lines, s.rng.randint(1, 3))
            s.order(user, sorted(picked), paths[(i + len(user)) % len(paths)])
        if i == 0:
            s.user(cyd, "Cyd Charisse", 1)  # registers after her first order
            s.product("SKU-3", "Mug", "5.00")  # created after it was ordered
            s.rename("SKU-1", "Electric kettle", "Kettle", 2)
            s.user(ada, "Ada King", 2)
    s.rename("SKU-1", "Kettle Pro", "Electric kettle", 3)
    s.reprice("sku.with.dots", "14.00", "12.50", 2)
    s.user(bob, "Robert Ross", 2)
    s.user(ada, "Ada, Countess of Lovelace", 3)
    return s

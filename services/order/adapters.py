"""The order service's PostgreSQL adapter: event store (append-only, optimistic
concurrency on (order_id, version), snapshots every N events, the outbox written in the
same transaction), the order-status table, the price replica and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, get_args

import msgspec
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from order.domain import Order, OrderEvent
from order.ports import ConcurrencyConflictError, OrderListing, OverdueOrder, StoredKey
from polysaga import tracing
from polysaga.events import payloads as P
from polysaga.events.decoding import decode_payload
from polysaga.events.envelope import Envelope, encode_body, new_event
from polysaga.events.payloads import Payload
from polysaga.persistence import outbox
from polysaga.persistence.database import Migration
from polysaga.persistence.replica import upsert_if_newer

MIGRATIONS = (
    Migration(
        "order",
        1,
        (
            "CREATE TABLE order_events ("
            " order_id uuid NOT NULL, version integer NOT NULL CHECK (version > 0),"
            " event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,"
            " event_version integer NOT NULL, data jsonb NOT NULL,"
            " occurred_at timestamptz NOT NULL,"
            " PRIMARY KEY (order_id, version))",
            "CREATE TABLE order_snapshots ("
            " order_id uuid PRIMARY KEY, version integer NOT NULL, state jsonb NOT NULL,"
            " taken_at timestamptz NOT NULL DEFAULT now())",
            # The current status of each order, kept in the same transaction as its events:
            # the deadline sweeper and the order list read it.
            "CREATE TABLE order_status ("
            " order_id uuid PRIMARY KEY, user_id text NOT NULL, status text NOT NULL,"
            " version integer NOT NULL, placed_at timestamptz NOT NULL,"
            " deadline_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
            "CREATE INDEX order_status_pending_deadline ON order_status (deadline_at)"
            " WHERE status = 'PENDING'",
            "CREATE TABLE product_prices ("
            " sku text PRIMARY KEY, price numeric(14, 2) NOT NULL CHECK (price >= 0),"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE idempotency_keys ("
            " key text PRIMARY KEY, request_hash text NOT NULL, order_id uuid NOT NULL,"
            " version integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
        ),
    ),
    Migration(
        "order",
        2,
        (
            # The catalog version each price was learned at: an event older than the stored
            # one changes nothing. 0 = never heard from the catalog (set by hand only).
            "ALTER TABLE product_prices ADD COLUMN version integer NOT NULL DEFAULT 0"
            " CHECK (version >= 0)",
        ),
    ),
    Migration(
        "order",
        3,
        (
            # The W3C trace headers of the request that placed the order (NULL when it was
            # not traced): the deadline sweeper's cancellation continues that trace.
            "ALTER TABLE order_status ADD COLUMN trace_context jsonb",
        ),
    ),
    Migration(
        "order",
        4,
        (
            # How the order's saga runs: the deadline sweeper cancels choreographed orders
            # only (an orchestrated saga's end is the orchestrator's to decide).
            "ALTER TABLE order_status ADD COLUMN saga text NOT NULL DEFAULT 'choreography'",
        ),
    ),
)


# Idempotency keys older than the retention go; a retry after that places a new order.
PRUNE_IDEMPOTENCY_KEYS = text(
    "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
    " WHERE created_at < now() - make_interval(secs => :retention) LIMIT :chunk)"
)


class PostgresOrderStore:
    """The order service's store (``order.ports.OrderStore``) on one connection, inside the
    transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection, snapshot_every: int = 10) -> None:
        self._conn = conn
        self._snapshot_every = snapshot_every

    # --- event stream -------------------------------------------------------------------

    async def load(self, order_id: str, as_of: datetime | None = None) -> Order | None:
        snapshot: Order | None = None
        after = 0
        if as_of is None:
            row = (
                await self._conn.execute(
                    text("SELECT state::text AS state FROM order_snapshots WHERE order_id = :id"),
                    {"id": order_id},
                )
            ).first()
            if row is not None:
                snapshot = Order.from_snapshot(msgspec.json.decode(row.state))
                after = snapshot.version
        rows = await self._conn.execute(
            text(
                "SELECT event_id, event_type, event_version, data::text AS data, occurred_at"
                " FROM order_events WHERE order_id = :id AND version > :after"
                " AND (CAST(:as_of AS timestamptz) IS NULL OR occurred_at <= :as_of)"
                " ORDER BY version"
            ),
            {"id": order_id, "after": after, "as_of": as_of},
        )
        return Order.replay((_to_domain(r) for r in rows), snapshot)

    async def events(self, order_id: str) -> list[dict[str, object]]:
        rows = await self._conn.execute(
            text(
                "SELECT version, event_id::text AS event_id, event_type, event_version,"
                " data::text AS data, occurred_at FROM order_events WHERE order_id = :id"
                " ORDER BY version"
            ),
            {"id": order_id},
        )
        return [
            {
                "version": r.version,
                "event_id": r.event_id,
                "type": f"{r.event_type}.v{r.event_version}",
                "occurred_at": r.occurred_at.isoformat(),
                "data": msgspec.json.decode(r.data),
            }
            for r in rows
        ]

    async def append(
        self, order: Order | None, event: OrderEvent, trace_headers: dict[str, str] | None = None
    ) -> Order:
        """Append one event at the next version; the same transaction writes the outbox row,
        the status row and, every N events, a snapshot."""
        new_state = Order.start(event) if order is None else order.apply(event)
        envelope = new_event(event.data, trace_headers=trace_headers)
        # ON CONFLICT on the stream position (not a savepoint around a failing INSERT):
        # the optimistic-concurrency check costs no extra round trips.
        inserted = await self._conn.execute(
            text(
                "INSERT INTO order_events (order_id, version, event_id, event_type,"
                " event_version, data, occurred_at) VALUES (:order_id, :version,"
                " :event_id, :event_type, :event_version, CAST(:data AS jsonb), :at)"
                " ON CONFLICT (order_id, version) DO NOTHING"
            ),
            {
                "order_id": new_state.order_id,
                "version": new_state.version,
                "event_id": envelope.event_id,
                "event_type": event.name,
                "event_version": envelope.version,
                "data": encode_body(event.data).decode(),
                "at": event.occurred_at,
            },
        )
        if inserted.rowcount != 1:
            raise ConcurrencyConflictError(
                f"order {new_state.order_id} moved past version {new_state.version - 1}"
            )
        await outbox.append(self._conn, [envelope])
        await self._write_status(new_state)
        if new_state.version % self._snapshot_every == 0:
            await self._conn.execute(
                text(
                    "INSERT INTO order_snapshots (order_id, version, state)"
                    " VALUES (:id, :v, CAST(:s AS jsonb)) ON CONFLICT (order_id) DO UPDATE"
                    " SET version = EXCLUDED.version, state = EXCLUDED.state, taken_at = now()"
                ),
                {
                    "id": new_state.order_id,
                    "v": new_state.version,
                    "s": msgspec.json.encode(new_state.to_snapshot()).decode(),
                },
            )
        return new_state

    async def publish(self, events: Sequence[Envelope[Payload]]) -> None:
        """Events about no order of this store (a payment it rejects): they have no stream
        to join, so they go to the outbox alone, in this same transaction."""
        await outbox.append(self._conn, events)

    async def _write_status(self, order: Order) -> None:
        trace_context = tracing.current_headers() if order.version == 1 else {}
        await self._conn.execute(
            text(
                "INSERT INTO order_status (order_id, user_id, status, version, placed_at,"
                " deadline_at, updated_at, trace_context, saga) VALUES (:id, :user, :status,"
                " :v, :placed, :deadline, :updated, CAST(:trace AS jsonb), :saga)"
                " ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,"
                " version = EXCLUDED.version, updated_at = EXCLUDED.updated_at"
            ),
            {
                "trace": msgspec.json.encode(trace_context).decode() if trace_context else None,
                "id": order.order_id,
                "user": order.user_id,
                "status": order.status.value,
                "v": order.version,
                "placed": order.placed_at,
                "deadline": order.deadline_at,
                "updated": order.updated_at,
                "saga": order.saga.value,
            },
        )

    # --- queries over the status table ---------------------------------------------------

    async def overdue(self, now: datetime, limit: int) -> list[OverdueOrder]:
        rows = await self._conn.execute(
            text(
                "SELECT order_id::text AS order_id, trace_context::text AS trace_context"
                " FROM order_status WHERE status = 'PENDING' AND saga = 'choreography'"
                " AND deadline_at < :now ORDER BY deadline_at LIMIT :limit"
                " FOR UPDATE SKIP LOCKED"
            ),
            {"now": now, "limit": limit},
        )
        return [
            OverdueOrder(
                r.order_id, msgspec.json.decode(r.trace_context) if r.trace_context else {}
            )
            for r in rows
        ]

    async def list_orders(
        self, status: str | None, after: str | None, limit: int
    ) -> list[OrderListing]:
        rows = await self._conn.execute(
            text(
                "SELECT order_id::text AS order_id, user_id, status, version, updated_at"
                " FROM order_status WHERE (CAST(:status AS text) IS NULL OR status = :status)"
                " AND (CAST(:after AS uuid) IS NULL OR order_id > CAST(:after AS uuid))"
                " ORDER BY order_id LIMIT :limit"
            ),
            {"status": status, "after": after, "limit": limit},
        )
        return [
            OrderListing(r.order_id, r.user_id, r.status, r.version, r.updated_at) for r in rows
        ]

    async def pending_counts(self, now: datetime) -> tuple[int, int]:
        """(sagas in flight, of which past their deadline): orders still PENDING. The partial
        index on PENDING orders keeps this cheap however many orders have ended."""
        row = (
            await self._conn.execute(
                text(
                    "SELECT count(*) AS in_flight,"
                    " count(*) FILTER (WHERE deadline_at < :now) AS stuck"
                    " FROM order_status WHERE status = 'PENDING'"
                ),
                {"now": now},
            )
        ).one()
        return int(row.in_flight), int(row.stuck)

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._conn.execute(
            text("SELECT status, count(*) AS n FROM order_status GROUP BY status")
        )
        return {r.status: int(r.n) for r in rows}

    # --- price replica ------------------------------------------------------------------

    async def prices(self, skus: Sequence[str]) -> dict[str, Decimal]:
        rows = await self._conn.execute(
            text("SELECT sku, price FROM product_prices WHERE sku = ANY(:skus)"),
            {"skus": list(skus)},
        )
        return {r.sku: Decimal(r.price) for r in rows}

    async def set_price(self, sku: str, price: Decimal) -> None:
        """A manual override: the price changes, the catalog version it was learned at
        does not, so the catalog's next change (a higher version) replaces it."""
        await self._conn.execute(
            text(
                "INSERT INTO product_prices (sku, price) VALUES (:sku, :price)"
                " ON CONFLICT (sku) DO UPDATE SET price = EXCLUDED.price, updated_at = now()"
            ),
            {"sku": sku, "price": price},
        )

    async def learn_price(self, sku: str, price: Decimal, version: int) -> bool:
        """Take the catalog's price at ``version`` unless a newer one is already known;
        True if it was taken."""
        return await upsert_if_newer(
            self._conn, "product_prices", "sku", {"sku": sku, "price": price, "version": version}
        )

    # --- idempotency keys ---------------------------------------------------------------

    async def claim_key(self, key: str, request_hash: str, order_id: str) -> StoredKey | None:
        """Reserve a key for this request; returns the earlier request's record if taken.
        A concurrent first use blocks here until the other transaction ends."""
        inserted = await self._conn.execute(
            text(
                "INSERT INTO idempotency_keys (key, request_hash, order_id, version)"
                " VALUES (:key, :hash, :order_id, 1) ON CONFLICT (key) DO NOTHING"
            ),
            {"key": key, "hash": request_hash, "order_id": order_id},
        )
        if inserted.rowcount == 1:
            return None
        row = (
            await self._conn.execute(
                text(
                    "SELECT request_hash, order_id::text AS order_id, version"
                    " FROM idempotency_keys WHERE key = :key"
                ),
                {"key": key},
            )
        ).one()
        return StoredKey(row.request_hash, row.order_id, row.version)


_ORDER_EVENTS = get_args(P.OrderLifeEvent)  # what an order's stream may hold


def _to_domain(row: Row[Any]) -> OrderEvent:
    """A stored event as the domain sees it, decoded by its Struct and upcast to the current
    version."""
    data = decode_payload(row.event_type, row.event_version, row.data.encode())
    assert isinstance(data, _ORDER_EVENTS), f"{row.event_type} in an order stream"
    return OrderEvent(data, row.occurred_at)

"""The order view's MongoDB adapter: one generation of the view (summaries, users, products),
the pointer that says which generation is live, and every write as one single-document
atomic update that is idempotent and commutative.

How each write stays commutative without transactions:
- history is a map keyed by event id ($set of a key is idempotent; $push would not be); it
  holds every step received, and the summary shows those the saga allows together
  (``domain.refused_steps``, decided from the whole set, so arrival order does not matter);
  a write learns from the document as it was which steps it made the saga refuse;
- a map key is never a SKU or an event id as such (``domain.field_key`` encodes it);
- ``order_version`` is a $inc guarded by "this event id is not in the history yet", in the
  same update that adds the key, so a redelivery increments nothing;
- created_at / updated_at are $min / $max of event times; the status is not stored at all
  but read from the history (``domain.status_of``), and the one tracking number is $set;
- users and product names are copied into summaries under a per-source version guard
  (``user_version``, ``product_versions.<sku>``): the entity's handler updates every summary
  that holds an older copy (one indexed update_many), and an order's handler, after writing
  the user id or SKUs, copies whatever the users/products collections hold. Each side writes
  first and reads second, so whichever arrives last sees the other.

Guarded upserts and version-guarded copies go through ``polysaga.mongo.replica``, which
tells a failed guard from a lost race to create the document.

Per-document atomicity is assumed, as MongoDB gives it; FerretDB v1 gives it only to one
connection per process (see ``polysaga.mongo``), so on FerretDB run one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from order_view.domain import ORDER_EVENTS, field_key, refused_steps
from order_view.ports import HistoryRecord, OrderFacts
from polysaga import metrics
from polysaga.mongo.client import MongoDatabase
from polysaga.mongo.replica import (
    copy_if_newer,
    upsert_guarded_returning_before,
    upsert_if_newer,
)

Collection = AsyncCollection[dict[str, Any]]
_WRITES = metrics.VIEW_WRITES.labels(read_model="order-view")

META_COLLECTION = "view_meta"
_ACTIVE = "active"
_ALLOCATED = "allocated"
_KINDS = ("summaries", "users", "products")
_GENERATION_NAME = re.compile(r"^(summaries|users|products)_g(\d+)$")


@dataclass(frozen=True)
class Generation:
    """One complete copy of the view; a rebuild fills a new one and swaps the pointer."""

    number: int
    summaries: Collection
    users: Collection
    products: Collection


def generation(db: MongoDatabase, number: int) -> Generation:
    return Generation(
        number,
        db[f"summaries_g{number}"],
        db[f"users_g{number}"],
        db[f"products_g{number}"],
    )


async def ensure_indexes(gen: Generation) -> None:
    # A user's orders, newest first; and the summaries holding a SKU (multikey).
    await gen.summaries.create_index(
        [("user_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
    )
    await gen.summaries.create_index("skus")


# --- the pointer to the live generation ---------------------------------------------------


async def ensure_pointer(db: MongoDatabase) -> int:
    """Create the pointer (generation 1) on first start; return the live generation."""
    meta = db[META_COLLECTION]
    # DuplicateKeyError: another replica created the document first, which is as good.
    with contextlib.suppress(DuplicateKeyError):
        await meta.update_one({"_id": _ACTIVE}, {"$setOnInsert": {"generation": 1}}, upsert=True)
    active = await read_pointer(db)
    with contextlib.suppress(DuplicateKeyError):
        await meta.update_one({"_id": _ALLOCATED}, {"$max": {"last": active}}, upsert=True)
    return active


async def read_pointer(db: MongoDatabase) -> int:
    doc = await db[META_COLLECTION].find_one({"_id": _ACTIVE})
    return int(doc["generation"]) if doc else 1


async def allocate_generation(db: MongoDatabase) -> int:
    """A generation number never used before, even by a rebuild that crashed half-way."""
    doc = await db[META_COLLECTION].find_one_and_update(
        {"_id": _ALLOCATED}, {"$inc": {"last": 1}}, upsert=True, return_document=True
    )
    assert doc is not None
    return int(doc["last"])


async def swap_pointer(db: MongoDatabase, new: int) -> bool:
    """Point readers and writers at ``new``; refused if a newer generation is already live."""
    result = await db[META_COLLECTION].update_one(
        {"_id": _ACTIVE, "generation": {"$lt": new}}, {"$set": {"generation": new}}
    )
    return result.matched_count == 1


async def stored_generations(db: MongoDatabase) -> set[int]:
    names = await db.list_collection_names()
    return {int(m.group(2)) for m in map(_GENERATION_NAME.match, names) if m}


async def drop_generation(db: MongoDatabase, number: int) -> None:
    for kind in _KINDS:
        await db.drop_collection(f"{kind}_g{number}")


# How old a process's copy of the pointer may be. A rebuild waits this long (and a margin)
# after its swap before its last catch-up, so a write another replica made through a stale
# copy is re-applied to the new generation (see rebuild.py).
POINTER_TTL_S = 1.0


class ActiveGeneration:
    """Which generation the service uses: a copy of the pointer at most ``POINTER_TTL_S``
    old, replaced at once when this process swaps. Reading the pointer for every event
    would cost a round trip per event."""

    def __init__(
        self, reader_ttl_s: float = POINTER_TTL_S, lookup_db: MongoDatabase | None = None
    ) -> None:
        self._reader_ttl_s = reader_ttl_s
        self._lookup_db = lookup_db
        self._cached: int | None = None
        self._cached_at = 0.0
        self.rebuilding = asyncio.Lock()

    async def for_writing(self, db: MongoDatabase) -> ViewStore:
        store = await self.for_reading(db)
        if self._lookup_db is None:
            return store
        return ViewStore(store.gen, generation(self._lookup_db, store.gen.number))

    async def for_reading(self, db: MongoDatabase) -> ViewStore:
        number = self._cached
        if number is None or time.monotonic() - self._cached_at > self._reader_ttl_s:
            number = await self._refresh(db)
        return ViewStore(generation(db, number))

    async def swap(self, db: MongoDatabase, new: int) -> bool:
        swapped = await swap_pointer(db, new)
        await self._refresh(db)
        return swapped

    async def _refresh(self, db: MongoDatabase) -> int:
        number = await read_pointer(db)
        self._cached, self._cached_at = number, time.monotonic()
        return number


# --- the projection's writes --------------------------------------------------------------


def _history_path(record: HistoryRecord) -> str:
    return f"history.{field_key(record.event_id)}"


def _history_entry(record: HistoryRecord) -> dict[str, Any]:
    return {"step": record.step, "at": record.at, "detail": record.detail}


def _fact_fields(facts: OrderFacts) -> dict[str, Any]:
    return {
        "order_id": facts.order_id,
        "user_id": facts.user_id,
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price} for i in facts.items
        ],
        "skus": sorted({i.sku for i in facts.items}),
        "item_count": facts.item_count,
        "total": facts.total,
    }


async def _record_step(
    collection: Collection, guard: dict[str, Any], update: dict[str, Any], record: HistoryRecord
) -> list[str]:
    """``_record_steps`` for one record; an update already applied refuses nothing new."""
    return await _record_steps(collection, guard, update, [record]) or []


async def _record_steps(
    collection: Collection,
    guard: dict[str, Any],
    update: dict[str, Any],
    records: Sequence[HistoryRecord],
) -> list[str] | None:
    """A guarded upsert for an update that adds ``records`` to a summary's history, in the
    same one round trip returning the history as it was: the steps this addition makes the
    saga refuse (``domain.refused_steps``; a record itself, or steps it outranks) are
    returned by name, each counted once, when it happens. None when the guard failed on an
    existing summary (already applied)."""
    # The whole document comes back: FerretDB v1 has no projection for findAndModify.
    written, before = await upsert_guarded_returning_before(
        collection, guard, update, count_write=_WRITES.inc
    )
    if not written:
        return None
    history: dict[str, Any] = dict((before or {}).get("history") or {})
    was_refused = refused_steps(history)
    for record in records:
        # One already there is a redelivery: whatever it refused was counted the first time.
        history.setdefault(field_key(record.event_id), _history_entry(record))
    now_refused = refused_steps(history) - was_refused
    return sorted(history[key]["step"] for key in now_refused)


def _defaults(*, order_event: bool) -> dict[str, Any]:
    """$setOnInsert for fields another update may have set first; never the ones this update
    sets (MongoDB refuses two operators on one path)."""
    defaults: dict[str, Any] = {}
    if not order_event:
        defaults["order_version"] = 0
    return defaults


# A copy into a summary: ({version path: source version}, {path: value to $set}).
_Copy = tuple[dict[str, int], dict[str, Any]]


def _user_copy(user: Mapping[str, Any]) -> _Copy:
    return (
        {"user_version": user["version"]},
        {"user": {"name": user["name"], "email": user["email"]}, "user_version": user["version"]},
    )


def _product_copy(product: Mapping[str, Any]) -> _Copy:
    key = field_key(str(product["_id"]))
    version = product["name_version"]
    return (
        {f"product_versions.{key}": version},
        {f"product_names.{key}": product["name"], f"product_versions.{key}": version},
    )


class ViewStore:
    """Reads and writes of one generation (its writes are the projection's
    ``order_view.ports.SummaryView``). ``lookups`` is the same generation through other
    connections: the users and products the projection reads go there, so they do not
    queue on the one connection the writes are serialised on (see ``polysaga.mongo``)."""

    def __init__(self, gen: Generation, lookups: Generation | None = None) -> None:
        self.gen = gen
        self.lookups = lookups or gen

    async def apply_order_event(
        self,
        facts: OrderFacts,
        record: HistoryRecord,
        cancel_reason: str | None,
    ) -> list[str]:
        """The steps the saga now refuses because of this event (see ``_record_step``)."""
        now = datetime.now(UTC)
        to_set: dict[str, Any] = {
            **_fact_fields(facts),
            _history_path(record): _history_entry(record),
            "applied_at": now,
        }
        if cancel_reason is not None:
            to_set["cancel_reason"] = cancel_reason
        update: dict[str, Any] = {
            "$set": to_set,
            "$inc": {"order_version": 1},
            "$min": {"created_at": record.at},
            "$max": {
                "updated_at": record.at,
                "user_version": 0,
                **{f"product_versions.{field_key(i.sku)}": 0 for i in facts.items},
            },
        }
        guard = {"_id": facts.order_id, _history_path(record): {"$exists": False}}
        return await _record_step(self.gen.summaries, guard, update, record)

    async def apply_life_event(
        self, order_id: str, record: HistoryRecord, tracking_number: str | None
    ) -> list[str]:
        """As ``apply_order_event`` for the order's own events that carry no facts (its
        payment received, shipment, delivery): each counts in ``order_version``, as the
        order's own version moved."""
        to_set: dict[str, Any] = {
            _history_path(record): _history_entry(record),
            "applied_at": datetime.now(UTC),
        }
        if tracking_number is not None:
            to_set["tracking_number"] = tracking_number
        update: dict[str, Any] = {
            "$set": to_set,
            "$inc": {"order_version": 1},
            "$max": {"updated_at": record.at, "user_version": 0},
        }
        guard = {"_id": order_id, _history_path(record): {"$exists": False}}
        return await _record_step(self.gen.summaries, guard, update, record)

    async def apply_together(
        self,
        order_id: str,
        order_records: Sequence[HistoryRecord],
        step_records: Sequence[HistoryRecord],
        *,
        facts: OrderFacts | None,
        cancel_reason: str | None,
        tracking_number: str | None,
        user_id: str | None,
    ) -> list[str] | None:
        """Several events of one order (the order's own events, with its facts when one of
        them carries them, and saga steps) in one guarded upsert that sets what their
        one-event writes would, merged. None when any of them was already applied: nothing
        is written then (apply them one by one).
        Otherwise the steps the saga now refuses, as ``_record_step`` finds them."""
        records = [*order_records, *step_records]
        to_set: dict[str, Any] = {_history_path(r): _history_entry(r) for r in records}
        to_set["applied_at"] = datetime.now(UTC)
        maxes: dict[str, Any] = {"updated_at": max(r.at for r in records), "user_version": 0}
        update: dict[str, Any] = {"$set": to_set, "$max": maxes}
        defaults = _defaults(order_event=bool(order_records))
        if facts is not None:
            to_set.update(_fact_fields(facts))
            placed = [r.at for r in order_records if r.step in ORDER_EVENTS]  # as their writes
            update["$min"] = {"created_at": min(placed)}
            maxes.update({f"product_versions.{field_key(i.sku)}": 0 for i in facts.items})
        if order_records:
            update["$inc"] = {"order_version": len(order_records)}
        elif user_id is not None:
            # As apply_saga_step: a step's user only seeds a summary no order event reached.
            defaults["user_id"] = user_id
        if cancel_reason is not None:
            to_set["cancel_reason"] = cancel_reason
        if tracking_number is not None:
            to_set["tracking_number"] = tracking_number
        if defaults:
            update["$setOnInsert"] = defaults
        guard: dict[str, Any] = {"_id": order_id}
        guard.update({_history_path(r): {"$exists": False} for r in records})
        return await _record_steps(self.gen.summaries, guard, update, records)

    async def apply_saga_step(
        self, order_id: str, record: HistoryRecord, user_id: str | None
    ) -> list[str]:
        """The steps the saga now refuses because of this event (see ``_record_step``). The
        step's user id only seeds a summary no order event has reached yet: the order's own
        events are the authority on whose order it is."""
        defaults = _defaults(order_event=False)
        if user_id is not None:
            defaults["user_id"] = user_id
        update = {
            "$set": {
                _history_path(record): _history_entry(record),
                "applied_at": datetime.now(UTC),
            },
            "$max": {"updated_at": record.at, "user_version": 0},
            "$setOnInsert": defaults,
        }
        return await _record_step(self.gen.summaries, {"_id": order_id}, update, record)

    async def copy_names_into(self, order_id: str, user_id: str, skus: Sequence[str]) -> None:
        """Give an order the profile and product names the users and products collections
        hold, where newer than its copies: usually one guarded update for all of them (a new
        order has no copies), else one per copy, each under its own version guard."""
        # Both reads start after this handler's summary write was acknowledged, so they see
        # every write acknowledged before, whichever connection they go through.
        user, products = await asyncio.gather(
            self.lookups.users.find_one({"_id": user_id}),
            self.lookups.products.find(
                {"_id": {"$in": list(skus)}, "name_version": {"$gt": 0}}
            ).to_list(),
        )
        copies = ([_user_copy(user)] if user is not None else []) + [
            _product_copy(p) for p in products
        ]
        if not copies:
            return
        guards = {path: {"$lt": version} for guard in copies for path, version in guard[0].items()}
        values = {path: value for copy in copies for path, value in copy[1].items()}
        _WRITES.inc()
        result = await self.gen.summaries.update_one({"_id": order_id, **guards}, {"$set": values})
        if result.matched_count == 1 or len(copies) == 1:
            return
        for guard, value in copies:  # some copy is already as new: guard each one
            _WRITES.inc()
            await self.gen.summaries.update_one(
                {"_id": order_id, **{path: {"$lt": v} for path, v in guard.items()}},
                {"$set": value},
            )

    async def save_user(self, user_id: str, name: str, email: str, version: int) -> None:
        update = {"$set": {"name": name, "email": email}}
        await upsert_if_newer(self.gen.users, user_id, version, update, count_write=_WRITES.inc)

    async def copy_user_everywhere(self, user_id: str, name: str, email: str, version: int) -> None:
        await copy_if_newer(
            self.gen.summaries,
            {"user_id": user_id},
            "user_version",
            version,
            {"user": {"name": name, "email": email}},
            count_write=_WRITES.inc,
        )

    async def save_product_name(self, sku: str, name: str, version: int) -> None:
        await upsert_if_newer(
            self.gen.products,
            sku,
            version,
            {
                "$set": {"name": name},
                "$max": {"version": version},
                "$setOnInsert": {"price_version": 0},
            },
            version_field="name_version",
            count_write=_WRITES.inc,
        )

    async def save_product_price(self, sku: str, price: str, version: int) -> None:
        await upsert_if_newer(
            self.gen.products,
            sku,
            version,
            {
                "$set": {"price": price},
                "$max": {"version": version},
                "$setOnInsert": {"name_version": 0},
            },
            version_field="price_version",
            count_write=_WRITES.inc,
        )

    async def copy_product_name_everywhere(self, sku: str, name: str, version: int) -> None:
        key = field_key(sku)
        await copy_if_newer(
            self.gen.summaries,
            {"skus": sku},
            f"product_versions.{key}",
            version,
            {f"product_names.{key}": name},
            count_write=_WRITES.inc,
        )

    # --- reads ----------------------------------------------------------------------------

    async def summary(self, order_id: str) -> dict[str, Any] | None:
        """A summary once an order event has reached it (steps alone make no order)."""
        return await self.gen.summaries.find_one({"_id": order_id, "order_version": {"$gte": 1}})

    async def user_orders(self, user_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        cursor = (
            self.gen.summaries.find({"user_id": user_id, "order_version": {"$gte": 1}})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def all_summaries(self) -> AsyncIterator[dict[str, Any]]:
        """Every summary a reader can get (steps alone make no order, and are left out: a
        forged step for an order never placed stays such a document for good)."""
        cursor = self.gen.summaries.find({"order_version": {"$gte": 1}}).sort("_id", ASCENDING)
        async for doc in cursor:
            yield doc

    async def count_orders(self) -> int:
        return int(await self.gen.summaries.count_documents({"order_version": {"$gte": 1}}))

    async def exists(self) -> bool:
        names = await self.gen.summaries.database.list_collection_names()
        return self.gen.summaries.name in names

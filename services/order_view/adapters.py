"""The order view's MongoDB adapter: one generation of the view (summaries, users, products),
the pointer that says which generation is live, and every write as one single-document
atomic update that is idempotent and commutative.

How each write stays commutative without transactions:
- history is a map keyed by event id ($set of a key is idempotent; $push would not be);
- ``order_version`` is a $inc guarded by "this event id is not in the history yet", in the
  same update that adds the key, so a redelivery increments nothing;
- created_at / updated_at are $min / $max of event times; a terminal status is $set, PENDING
  only $setOnInsert (see ``domain.StatusWrite``);
- users and product names are copied into summaries under a per-source version guard
  (``user_version``, ``product_versions.<sku>``): the entity's handler updates every summary
  that holds an older copy (one indexed update_many), and an order's handler, after writing
  the user id or SKUs, copies whatever the users/products collections hold. Each side writes
  first and reads second, so whichever arrives last sees the other.

A guarded upsert whose guard fails raises DuplicateKeyError; so does an upsert that loses
the race to create a new document. ``_upsert_guarded`` tells the two apart by retrying as a
plain update.

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

from order_view.domain import OrderStatus, StatusWrite, field_key
from polysaga.events.payloads import OrderLine
from polysaga.mongo.client import MongoDatabase

Collection = AsyncCollection[dict[str, Any]]

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


@dataclass(frozen=True)
class OrderFacts:
    """What every order event carries, identically: the order as it was placed."""

    order_id: str
    user_id: str
    items: Sequence[OrderLine]
    item_count: int
    total: str


@dataclass(frozen=True)
class HistoryRecord:
    event_id: str
    step: str
    at: datetime
    detail: str | None

    @property
    def path(self) -> str:
        return f"history.{field_key(self.event_id)}"

    def entry(self) -> dict[str, Any]:
        return {"step": self.step, "at": self.at, "detail": self.detail}


async def _upsert_guarded(
    collection: Collection, guard: dict[str, Any], update: dict[str, Any]
) -> bool:
    """Apply ``update`` where ``guard`` matches, creating the document if it is missing.
    False when the stored document fails the guard (it is already as new or newer)."""
    try:
        await collection.update_one(guard, update, upsert=True)
    except DuplicateKeyError:
        # Either the guard failed on an existing document, or a concurrent upsert created
        # the document first; now that it exists, a plain update decides which.
        result = await collection.update_one(guard, update)
        return result.matched_count == 1
    return True


def _defaults(*, order_event: bool, status: StatusWrite | None) -> dict[str, Any]:
    """$setOnInsert for fields another update may have set first; never the ones this update
    sets (MongoDB refuses two operators on one path)."""
    defaults: dict[str, Any] = {}
    if status is None or not status.overrides:
        defaults["status"] = (status.status if status else OrderStatus.PENDING).value
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
    """Reads and writes of one generation. ``lookups`` is the same generation through other
    connections: the users and products the projection reads go there, so they do not
    queue on the one connection the writes are serialised on (see ``polysaga.mongo``)."""

    def __init__(self, gen: Generation, lookups: Generation | None = None) -> None:
        self.gen = gen
        self.lookups = lookups or gen

    async def apply_order_event(
        self,
        facts: OrderFacts,
        record: HistoryRecord,
        status: StatusWrite,
        cancel_reason: str | None,
    ) -> bool:
        """False when this event was already applied."""
        now = datetime.now(UTC)
        to_set: dict[str, Any] = {
            "order_id": facts.order_id,
            "user_id": facts.user_id,
            "items": [
                {"sku": i.sku, "quantity": i.quantity, "unit_price": i.unit_price}
                for i in facts.items
            ],
            "skus": sorted({i.sku for i in facts.items}),
            "item_count": facts.item_count,
            "total": facts.total,
            record.path: record.entry(),
            "applied_at": now,
        }
        if status.overrides:
            to_set["status"] = status.status.value
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
        defaults = _defaults(order_event=True, status=status)
        if defaults:
            update["$setOnInsert"] = defaults
        guard = {"_id": facts.order_id, record.path: {"$exists": False}}
        return await _upsert_guarded(self.gen.summaries, guard, update)

    async def apply_saga_step(
        self, order_id: str, record: HistoryRecord, user_id: str | None
    ) -> None:
        to_set: dict[str, Any] = {record.path: record.entry(), "applied_at": datetime.now(UTC)}
        if user_id is not None:
            to_set["user_id"] = user_id
        update = {
            "$set": to_set,
            "$max": {"updated_at": record.at, "user_version": 0},
            "$setOnInsert": _defaults(order_event=False, status=None),
        }
        await _upsert_guarded(self.gen.summaries, {"_id": order_id}, update)

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
        result = await self.gen.summaries.update_one({"_id": order_id, **guards}, {"$set": values})
        if result.matched_count == 1 or len(copies) == 1:
            return
        for guard, value in copies:  # some copy is already as new: guard each one
            await self.gen.summaries.update_one(
                {"_id": order_id, **{path: {"$lt": v} for path, v in guard.items()}},
                {"$set": value},
            )

    async def save_user(self, user_id: str, name: str, email: str, version: int) -> None:
        await _upsert_guarded(
            self.gen.users,
            {"_id": user_id, "version": {"$lt": version}},
            {"$set": {"name": name, "email": email, "version": version}},
        )

    async def copy_user_everywhere(self, user_id: str, name: str, email: str, version: int) -> None:
        await self.gen.summaries.update_many(
            {"user_id": user_id, "user_version": {"$lt": version}},
            {"$set": {"user": {"name": name, "email": email}, "user_version": version}},
        )

    async def save_product_name(self, sku: str, name: str, version: int) -> None:
        await _upsert_guarded(
            self.gen.products,
            {"_id": sku, "name_version": {"$lt": version}},
            {
                "$set": {"name": name, "name_version": version},
                "$max": {"version": version},
                "$setOnInsert": {"price_version": 0},
            },
        )

    async def save_product_price(self, sku: str, price: str, version: int) -> None:
        await _upsert_guarded(
            self.gen.products,
            {"_id": sku, "price_version": {"$lt": version}},
            {
                "$set": {"price": price, "price_version": version},
                "$max": {"version": version},
                "$setOnInsert": {"name_version": 0},
            },
        )

    async def copy_product_name_everywhere(self, sku: str, name: str, version: int) -> None:
        key = field_key(sku)
        await self.gen.summaries.update_many(
            {"skus": sku, f"product_versions.{key}": {"$lt": version}},
            {"$set": {f"product_names.{key}": name, f"product_versions.{key}": version}},
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
        async for doc in self.gen.summaries.find({}).sort("_id", ASCENDING):
            yield doc

    async def count_orders(self) -> int:
        return int(await self.gen.summaries.count_documents({"order_version": {"$gte": 1}}))

    async def exists(self) -> bool:
        names = await self.gen.summaries.database.list_collection_names()
        return self.gen.summaries.name in names

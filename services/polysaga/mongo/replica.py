"""A service's copy of another service's entity in MongoDB, kept by version-guarded writes: a
newer version replaces the copy, an older or repeated one changes nothing, so events may
arrive late, twice or out of order and the copy still ends at the newest version. Each write
is one single-document (or, for copies held in many documents, one multi-document) update,
without transactions.

A guarded upsert whose guard fails on an existing document raises DuplicateKeyError (the
upsert tries to insert a second document with that ``_id``); so does an upsert that loses the
race to create a new one. ``upsert_guarded`` tells the two apart by retrying as a plain update."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from pymongo.results import UpdateResult

Collection = AsyncCollection[dict[str, Any]]
# Called once per write command sent (a read model counts what its store's write limit is
# spent on: polysaga_view_writes_total).
WriteCounter = Callable[[], object]


T = TypeVar("T")


def _uncounted() -> None:
    return None


async def _upsert_then_update(
    write: Callable[[bool], Awaitable[T]], count_write: WriteCounter
) -> tuple[T, bool]:
    """``write(upsert=True)``; on DuplicateKeyError, ``write(upsert=False)``. Returns the
    result and whether it was the upsert's (which always writes)."""
    count_write()
    try:
        return await write(True), True
    except DuplicateKeyError:
        # Either the guard failed on an existing document, or a concurrent upsert created
        # the document first; now that it exists, a plain update decides which.
        count_write()
        return await write(False), False


async def upsert_guarded(
    collection: Collection,
    guard: Mapping[str, Any],
    update: Mapping[str, Any],
    *,
    count_write: WriteCounter = _uncounted,
) -> bool:
    """Apply ``update`` to the document ``guard`` matches (``guard`` names its ``_id``),
    creating the document if it is missing. False when the stored document fails the guard."""

    async def write(upsert: bool) -> UpdateResult:
        return await collection.update_one(dict(guard), dict(update), upsert=upsert)

    result, upserted = await _upsert_then_update(write, count_write)
    return upserted or result.matched_count == 1


async def upsert_guarded_returning_before(
    collection: Collection,
    guard: Mapping[str, Any],
    update: Mapping[str, Any],
    *,
    count_write: WriteCounter = _uncounted,
) -> tuple[bool, dict[str, Any] | None]:
    """``upsert_guarded`` in one round trip that also returns the whole document as it was
    before the update (None if the update created it): (written, before)."""

    async def write(upsert: bool) -> dict[str, Any] | None:
        return await collection.find_one_and_update(
            dict(guard), dict(update), upsert=upsert, return_document=ReturnDocument.BEFORE
        )

    before, upserted = await _upsert_then_update(write, count_write)
    return upserted or before is not None, before


def _with_version(update: Mapping[str, Any], version_field: str, version: int) -> dict[str, Any]:
    return {**update, "$set": {**update.get("$set", {}), version_field: version}}


async def upsert_if_newer(
    collection: Collection,
    key: str,
    version: int,
    update: Mapping[str, Any],
    *,
    version_field: str = "version",
    count_write: WriteCounter = _uncounted,
) -> bool:
    """Apply ``update`` to the document ``key`` (creating it if missing) and set its
    ``version_field`` to ``version``, unless it already holds ``version`` or a newer one.
    True if it was written."""
    guard = {"_id": key, version_field: {"$lt": version}}
    update = _with_version(update, version_field, version)
    return await upsert_guarded(collection, guard, update, count_write=count_write)


async def copy_if_newer(
    collection: Collection,
    where: Mapping[str, Any],
    version_field: str,
    version: int,
    values: Mapping[str, Any],
    *,
    count_write: WriteCounter = _uncounted,
) -> int:
    """Set ``values`` and ``version_field`` = ``version`` in every document ``where`` matches
    whose copy is older than ``version``; a document without ``version_field`` does not match
    (``$lt`` skips a missing field), so documents start it at 0. Returns how many changed."""
    update = _with_version({"$set": dict(values)}, version_field, version)
    count_write()
    result = await collection.update_many({**where, version_field: {"$lt": version}}, update)
    return result.modified_count

"""The catalog's MongoDB adapter. A product is one document, ``_id`` = SKU, and its pending
events live inside it (document-embedded outbox), so a state change and its events are
one single-document write: an insert for a new product, a version-guarded
find_one_and_update for a change. No multi-document transaction is needed anywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from catalog.domain import Product, ProductEvent, ProductExistsError
from catalog.ports import StoredProduct
from polysaga.events.envelope import new_event
from polysaga.money import format_money, parse_money
from polysaga.mongo import outbox
from polysaga.mongo.client import MongoDatabase

COLLECTION = "products"
# The outbox sequence of the last event the document staged: the relay publishes a
# document's pending events in sequence order, so it only ever grows.
SEQ_FIELD = "outbox_seq"


async def ensure_indexes(db: MongoDatabase) -> None:
    """The relay's index on pending events; ``_id`` (the SKU) is unique by itself."""
    await outbox.ensure_indexes(db[COLLECTION])


class MongoProductStore:
    """The catalog's store (``catalog.ports.ProductStore``) on its database."""

    def __init__(self, db: MongoDatabase) -> None:
        self._products: AsyncCollection[dict[str, Any]] = db[COLLECTION]

    async def get(self, sku: str) -> StoredProduct | None:
        document = await self._products.find_one({"_id": sku}, {outbox.OUTBOX_FIELD: 0})
        return None if document is None else StoredProduct(_product(document), document[SEQ_FIELD])

    async def add(self, product: Product, events: Sequence[ProductEvent]) -> None:
        """Insert the product with its events already staged inside it; a SKU that exists
        raises ProductExistsError and nothing is written."""
        update = outbox.merge_updates(
            {"$set": {**_state(product), "version": product.version}},
            _staging(events, last_seq=0),
        )
        try:
            await self._products.insert_one({"_id": product.sku, **_as_fields(update)})
        except DuplicateKeyError as exc:
            raise ProductExistsError(product.sku) from exc

    async def save(
        self, stored: StoredProduct, changed: Product, events: Sequence[ProductEvent]
    ) -> Product | None:
        """Write the change and its events if the product is still at the version it was
        read at; None if someone else changed it first."""
        document = await self._products.find_one_and_update(
            {"_id": changed.sku, "version": stored.product.version},
            outbox.merge_updates(
                {"$set": _state(changed), "$inc": {"version": 1}},
                _staging(events, last_seq=stored.outbox_seq),
            ),
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _product(document)


def _staging(events: Sequence[ProductEvent], last_seq: int) -> dict[str, Any]:
    envelopes = [new_event(e) for e in events]
    return outbox.merge_updates(
        outbox.staged(envelopes, first_seq=last_seq + 1), {"$inc": {SEQ_FIELD: len(envelopes)}}
    )


def _state(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "price": format_money(product.price),
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


def _as_fields(update: dict[str, Any]) -> dict[str, Any]:
    """The document an update would make of nothing: ``$set`` paths become nested fields,
    ``$inc`` amounts become values (an absent field counts from zero)."""
    document: dict[str, Any] = {}
    for operator in ("$set", "$inc"):
        for path, value in update.get(operator, {}).items():
            *parents, leaf = path.split(".")
            target = document
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
    return document


def _product(document: dict[str, Any]) -> Product:
    return Product(
        sku=document["sku"],
        name=document["name"],
        price=parse_money(document["price"]),
        version=int(document["version"]),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
    )

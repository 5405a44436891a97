"""The gateway's rules, free of I/O: which parts an order's details need, and the one
document made from whatever parts arrived (a part that did not arrive is ``None`` and named
in ``missing``; the document is still an answer: graceful degradation); and who may see an
order (its own customer, or an operator)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

USER_PART = "user"


def product_part(sku: str) -> str:
    return f"product:{sku}"


@dataclass(frozen=True)
class OrderDetails:
    order: dict[str, Any]
    user: dict[str, Any] | None
    products: dict[str, dict[str, Any] | None]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def user_id_of(order: Mapping[str, Any]) -> str | None:
    user_id = order.get("user_id")
    return user_id if isinstance(user_id, str) and user_id else None


def skus_of(order: Mapping[str, Any]) -> list[str]:
    """Each SKU once, in the order's line order."""
    items = order.get("items")
    skus: list[str] = []
    for item in items if isinstance(items, list) else []:
        sku = item.get("sku") if isinstance(item, dict) else None
        if isinstance(sku, str) and sku and sku not in skus:
            skus.append(sku)
    return skus


def compose_details(
    order: Mapping[str, Any],
    user: Mapping[str, Any] | None,
    products: Mapping[str, Mapping[str, Any] | None],
) -> OrderDetails:
    """``products`` maps each of the order's SKUs to what the catalog returned (or None)."""
    missing = [] if user is not None else [USER_PART]
    by_sku: dict[str, dict[str, Any] | None] = {}
    for sku in skus_of(order):
        product = products.get(sku)
        by_sku[sku] = dict(product) if product is not None else None
        if product is None:
            missing.append(product_part(sku))
    return OrderDetails(dict(order), dict(user) if user is not None else None, by_sku, missing)


def may_see(owner_id: object, *, viewer_id: str, operator: bool) -> bool:
    """A customer sees their own orders only; an operator sees every order."""
    return operator or (isinstance(owner_id, str) and owner_id == viewer_id)


def scoped_idempotency_key(user_id: str, key: str) -> str:
    """The key the order service is given for a customer's key: keys are the customer's
    own, so two customers choosing the same key never meet (nor learn of each other)."""
    # Length-prefixed: no pair of (user, key) can be written as another pair.
    return hashlib.sha256(f"{len(user_id)}:{user_id}:{key}".encode()).hexdigest()

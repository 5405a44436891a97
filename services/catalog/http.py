"""The catalog's HTTP API. Every write wakes the outbox relay, which publishes what the
write staged inside the product document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from catalog.adapters import ProductStore
from catalog.application import add_product, change_product
from catalog.domain import ConcurrentChangeError, Product, ProductExistsError, ProductNotFoundError
from polysaga.api_types import VISIBLE_TEXT_PATTERN, Sku, StrictStruct
from polysaga.auth import require_operator
from polysaga.money import MoneyText, format_money, parse_money
from polysaga.problems import Problem, problem_responses
from polysaga.runtime import ServiceRuntime

ProductName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=200, pattern=VISIBLE_TEXT_PATTERN, description="Product name"
    ),
]


class ProductIn(StrictStruct):
    sku: Sku
    name: ProductName
    price: MoneyText


class ProductChangeIn(StrictStruct):
    name: ProductName | msgspec.UnsetType = msgspec.UNSET
    price: MoneyText | msgspec.UnsetType = msgspec.UNSET


class ProductOut(msgspec.Struct):
    sku: str
    name: str
    price: str
    version: int


def _product_out(product: Product) -> ProductOut:
    return ProductOut(product.sku, product.name, format_money(product.price), product.version)


def _sku(sku: str) -> str:
    try:
        return msgspec.convert(sku, Sku)
    except msgspec.ValidationError as exc:
        raise Problem(400, "Bad SKU", str(exc)) from exc


def _unknown(sku: str) -> Problem:
    return Problem(404, "Unknown product", f"no product {sku}", slug="unknown-product")


@post(
    "/products",
    summary="Add a product to the catalog (operator)",
    responses=problem_responses(409),
    guards=[require_operator],
)
async def create_product(
    data: JSONBody[ProductIn], runtime: NamedDependency[ServiceRuntime]
) -> ProductOut:
    try:
        product = await add_product(
            ProductStore(runtime.mongo),
            data.sku,
            data.name,
            parse_money(data.price),
            datetime.now(UTC),
        )
    except ProductExistsError as exc:
        raise Problem(
            409, "Product exists", f"a product {data.sku} exists already", slug="product-exists"
        ) from exc
    runtime.wake_relay()
    return _product_out(product)


@get("/products/{sku:str}", summary="A product")
async def get_product(sku: FromPath[str], runtime: NamedDependency[ServiceRuntime]) -> ProductOut:
    stored = await ProductStore(runtime.mongo).get(_sku(sku))
    if stored is None:
        raise _unknown(sku)
    return _product_out(stored.product)


@patch(
    "/products/{sku:str}",
    summary="Rename a product and/or change its price (operator)",
    responses=problem_responses(409),
    guards=[require_operator],
)
async def patch_product(
    sku: FromPath[str], data: JSONBody[ProductChangeIn], runtime: NamedDependency[ServiceRuntime]
) -> ProductOut:
    sku = _sku(sku)
    name = data.name or None
    price = parse_money(data.price) if data.price else None
    if name is None and price is None:
        raise Problem(400, "Nothing to change", "send at least one of name, price")
    try:
        product = await change_product(
            ProductStore(runtime.mongo), sku, datetime.now(UTC), name=name, price=price
        )
    except ProductNotFoundError as exc:
        raise _unknown(sku) from exc
    except ConcurrentChangeError as exc:
        raise Problem(
            409,
            "Concurrent change",
            f"product {sku} kept changing while this change was applied; try again",
            slug="concurrent-change",
        ) from exc
    runtime.wake_relay()
    return _product_out(product)


ROUTES = [create_product, get_product, patch_product]

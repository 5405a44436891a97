"""The catalog's HTTP API. Every write commits a unit of work, which wakes the outbox relay
that publishes what the write staged inside the product document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import get, patch, post
from litestar.params import FromPath, JSONBody

from catalog import application
from catalog.domain import ConcurrentChangeError, Product, ProductExistsError, ProductNotFoundError
from catalog.ports import ProductStore
from polysaga.api_types import VISIBLE_TEXT_PATTERN, Sku, StrictStruct
from polysaga.app import UnitOfWorkParam
from polysaga.auth import require_operator
from polysaga.money import MoneyText, format_money, parse_money
from polysaga.problems import Problem, ProblemMap, ProblemType, problem_responses, validated

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


# The catalog's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    ProductExistsError: ProblemType(
        409, "Product exists", "product-exists", detail="a product {exc} exists already"
    ),
    ProductNotFoundError: ProblemType(
        404, "Unknown product", "unknown-product", detail="no product {exc}"
    ),
    ConcurrentChangeError: ProblemType(
        409,
        "Concurrent change",
        "concurrent-change",
        detail="product {exc} kept changing while this change was applied; try again",
    ),
}


@post(
    "/products",
    summary="Add a product to the catalog (operator)",
    responses=problem_responses(409),
    guards=[require_operator],
)
async def create_product(
    data: JSONBody[ProductIn], uow: UnitOfWorkParam[ProductStore]
) -> ProductOut:
    product = await application.add_product(
        uow, data.sku, data.name, parse_money(data.price), datetime.now(UTC)
    )
    return _product_out(product)


@get("/products/{sku:str}", summary="A product")
async def get_product(sku: FromPath[str], uow: UnitOfWorkParam[ProductStore]) -> ProductOut:
    return _product_out(await application.get_product(uow, validated(sku, Sku, "Bad SKU")))


@patch(
    "/products/{sku:str}",
    summary="Rename a product and/or change its price (operator)",
    responses=problem_responses(409),
    guards=[require_operator],
)
async def patch_product(
    sku: FromPath[str], data: JSONBody[ProductChangeIn], uow: UnitOfWorkParam[ProductStore]
) -> ProductOut:
    sku = validated(sku, Sku, "Bad SKU")
    name = data.name or None
    price = parse_money(data.price) if data.price else None
    if name is None and price is None:
        raise Problem(400, "Nothing to change", "send at least one of name, price")
    product = await application.change_product(uow, sku, datetime.now(UTC), name=name, price=price)
    return _product_out(product)


ROUTES = [create_product, get_product, patch_product]

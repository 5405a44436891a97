"""The catalog's rules without servers: which events creating and changing a product
produce, in which order, at which version; and which request bodies the API accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from catalog.domain import Product
from catalog.http import ProductChangeIn, ProductIn
from polysaga.events import payloads as P

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


def mug() -> Product:
    product, _ = Product.create("mug", "Mug", Decimal("12.50"), NOW)
    return product


def test_creating_publishes_product_created_at_version_1() -> None:
    product, events = Product.create("mug", "Mug", Decimal("12.5"), NOW)

    assert (product.version, product.created_at, product.updated_at) == (1, NOW, NOW)
    assert events == [P.ProductCreated(sku="mug", name="Mug", price="12.50", version=1)]


def test_a_new_price_publishes_price_changed_with_the_previous_price() -> None:
    changed, events = mug().change(LATER, price=Decimal("14"))

    assert (changed.price, changed.version, changed.updated_at) == (Decimal("14"), 2, LATER)
    assert events == [
        P.ProductPriceChanged(sku="mug", price="14.00", previous_price="12.50", version=2)
    ]


def test_a_new_name_publishes_renamed_with_the_previous_name() -> None:
    changed, events = mug().change(LATER, name="Big mug")

    assert (changed.name, changed.version) == ("Big mug", 2)
    assert events == [P.ProductRenamed(sku="mug", name="Big mug", previous_name="Mug", version=2)]


def test_changing_both_publishes_price_then_name_at_one_new_version() -> None:
    changed, events = mug().change(LATER, name="Big mug", price=Decimal("15.00"))

    assert changed.version == 2
    assert [type(e) for e in events] == [P.ProductPriceChanged, P.ProductRenamed]
    assert {e.version for e in events} == {2}


@pytest.mark.parametrize(
    ("name", "price"),
    [(None, None), ("Mug", None), (None, Decimal("12.5")), ("Mug", Decimal("12.50"))],
)
def test_a_change_to_the_same_values_publishes_nothing(
    name: str | None, price: Decimal | None
) -> None:
    product = mug()

    assert product.change(LATER, name=name, price=price) == (product, [])


def test_only_what_changed_is_published() -> None:
    changed, events = mug().change(LATER, name="Mug", price=Decimal("13.00"))

    assert [type(e) for e in events] == [P.ProductPriceChanged]
    assert changed.name == "Mug"


@pytest.mark.parametrize(
    "body",
    [
        b'{"sku": "mug", "name": "Mug"}',
        b'{"sku": "mug", "name": "Mug", "price": 12.5}',
        b'{"sku": "mug", "name": "Mug", "price": "12.345"}',
        b'{"sku": "mug", "name": "Mug", "price": "-1.00"}',
        b'{"sku": "mug", "name": "Mug", "price": "NaN"}',
        b'{"sku": "m ug", "name": "Mug", "price": "1"}',
        b'{"sku": "mug", "name": " ", "price": "1"}',
        b'{"sku": "mug", "name": "Mug", "price": "1", "colour": "red"}',
    ],
)
def test_bad_products_are_refused(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=ProductIn, strict=True)


@pytest.mark.parametrize("body", [b'{"price": null}', b'{"name": ""}', b'{"sku": "other"}'])
def test_bad_changes_are_refused(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=ProductChangeIn, strict=True)

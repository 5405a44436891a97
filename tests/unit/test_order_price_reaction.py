"""The order service's price replica reaction without servers: it hands the catalog's
price and version to the store's guarded upsert and measures the replica's lag."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from prometheus_client import REGISTRY

from event_samples import product_created, product_price_changed
from fakes.order import FakeOrderStore
from order.application import on_product_priced
from polysaga.events.envelope import new_event


def lag(bucket: str) -> float:
    labels = {"read_model": "order-prices", "le": bucket}
    return REGISTRY.get_sample_value("polysaga_consistency_lag_seconds_bucket", labels) or 0.0


async def test_prices_are_learned_newest_version_first_and_lag_is_observed() -> None:
    fake = FakeOrderStore()
    store = fake
    created = new_event(product_created(sku="mug", name="Mug", price="10.00", version=1))
    newer = new_event(
        product_price_changed(sku="mug", price="12.5", previous_price="10.00", version=2)
    )
    within_5s, within_1s = lag("5.0"), lag("1.0")

    await on_product_priced(newer, store, newer.time + timedelta(seconds=2))
    await on_product_priced(created, store, created.time + timedelta(seconds=2))

    assert fake.price_versions == {"mug": (Decimal("12.50"), 2)}
    assert (lag("5.0"), lag("1.0")) == (within_5s + 2, within_1s)


async def test_an_event_from_the_future_counts_as_no_lag() -> None:
    created = new_event(product_created(sku="pen", name="Pen", price="1.00", version=1))
    early = replace(created, time=created.time + timedelta(seconds=3))
    zero = lag("0.005")

    await on_product_priced(early, FakeOrderStore(), created.time)

    assert lag("0.005") == zero + 1

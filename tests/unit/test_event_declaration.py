"""The one declaration of events: consistent with itself and with the services' handlers."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable

import pytest

from polysaga.events import declaration
from polysaga.events.declaration import (
    CATALOG,
    EVENTS,
    INVENTORY,
    ORDERS,
    PAYMENTS,
    UnknownEventError,
    catalogue_markdown,
    consumed_by,
    published_by,
    spec,
)
from polysaga.events.payloads import Payload

SERVICES = ("order", "inventory", "payment", "user", "catalog", "order-view", "notification")
PRODUCERS = tuple(c.producer for c in declaration.CONTEXTS)


def handler_map(service: str) -> dict[str, object]:
    """A service's EVENT_HANDLERS; its package is its name in snake case (order-view ->
    order_view)."""
    package = service.replace("-", "_")
    handlers: dict[str, object] = importlib.import_module(f"{package}.application").EVENT_HANDLERS
    return handlers


def test_the_services_are_the_producers_and_consumers() -> None:
    assert declaration.services() == frozenset(SERVICES)


def test_event_names_and_streams_are_unique() -> None:
    assert len({e.name for e in EVENTS}) == len(EVENTS)
    assert len({c.stream for c in declaration.CONTEXTS}) == len(declaration.CONTEXTS)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_every_consumer_is_a_service_with_a_handler_for_it(
    event: declaration.EventSpec,
) -> None:
    for consumer in event.consumers:
        assert consumer in SERVICES
        assert event.name in handler_map(consumer)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_handles_exactly_what_it_consumes(service: str) -> None:
    declared = {e.name for events in consumed_by(service).values() for e in events}

    assert set(handler_map(service)) == declared


@pytest.mark.parametrize("service", PRODUCERS)
def test_a_producer_publishes_only_under_its_own_context(service: str) -> None:
    [context] = [c for c in declaration.CONTEXTS if c.producer == service]
    published = published_by(service)

    assert published
    for event in published:
        assert event.context == context
        assert event.subject == f"{context.name}.events.{event.name}"
        assert event.subject.startswith(context.subjects.removesuffix(">"))


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_consumes_its_own_events(service: str) -> None:
    assert all(c.producer != service for c in consumed_by(service))


def test_payment_consumption_is_grouped_by_stream() -> None:
    assert consumed_by("payment") == {
        ORDERS: (spec("OrderPlaced"), spec("OrderCancelled"), spec("PaymentRejected")),
        INVENTORY: (spec("StockReserved"),),
    }


def test_order_consumes_from_inventory_payments_and_the_catalog() -> None:
    grouped = consumed_by("order")

    assert set(grouped) == {INVENTORY, PAYMENTS, CATALOG}
    assert [e.name for e in grouped[PAYMENTS]] == ["PaymentProcessed", "PaymentFailed"]
    assert [e.name for e in grouped[CATALOG]] == ["ProductCreated", "ProductPriceChanged"]


@pytest.mark.parametrize("service", ["user", "catalog"])
def test_user_and_catalog_consume_nothing(service: str) -> None:
    assert consumed_by(service) == {}
    assert published_by(service)


def test_an_unknown_service_consumes_nothing() -> None:
    assert consumed_by("nobody") == {}


def test_spec_refuses_an_unknown_name() -> None:
    with pytest.raises(UnknownEventError):
        spec("OrderTeleported")


def test_ce_type_and_dead_letter_subject() -> None:
    assert spec("PaymentProcessed").ce_type == "io.polysaga.PaymentProcessed.v2"
    assert (
        declaration.dead_letter_subject("order", "payments.events.PaymentFailed")
        == "deadletter.order.payments.events.PaymentFailed"
    )


def test_catalogue_has_one_row_per_event() -> None:
    lines = catalogue_markdown().splitlines()
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines[2:]}

    assert len(lines) == 2 + len(EVENTS)
    assert set(rows) == {e.name for e in EVENTS}
    for event in EVENTS:
        row = rows[event.name]
        assert f"v{event.version}" in row
        assert f"`{event.subject}`" in row
        assert f"| {event.producer} |" in row
    assert rows["OrderCancelled"].endswith("| inventory, notification, order-view, payment |")
    assert rows["NotificationSent"].endswith("| — |")


def _accepted_payloads(handler: Callable[..., object]) -> set[type]:
    """The payload types a handler's ``Envelope[...]`` parameter names."""
    hints = typing.get_type_hints(handler)
    envelope = next(iter(hints.values()))
    (payload,) = typing.get_args(envelope)
    return set(typing.get_args(payload)) or {payload}


@pytest.mark.parametrize("service", SERVICES)
def test_each_handler_is_typed_for_the_body_it_is_given(service: str) -> None:
    """The handler maps are keyed by name; the handler's annotation must name the Struct the
    declaration decodes that event with (mypy cannot see through the map)."""
    for name, handler in handler_map(service).items():
        assert callable(handler)
        assert spec(name).payload in _accepted_payloads(handler), (service, name)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_each_event_s_body_is_a_strict_struct_named_after_it(
    event: declaration.EventSpec,
) -> None:
    assert event.payload.__name__ == event.name
    assert issubclass(event.payload, Payload)
    assert event.payload.__struct_config__.forbid_unknown_fields
    assert event.context.aggregate_field in event.payload.__struct_fields__
    for version, older in event.earlier.items():
        assert version < event.version
        assert issubclass(older, Payload) and older.__struct_config__.forbid_unknown_fields

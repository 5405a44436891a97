"""The one declaration of events: consistent with itself and with the services' handlers."""

from __future__ import annotations

import importlib

import pytest

from polysaga.events import declaration
from polysaga.events.declaration import (
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

SERVICES = ("order", "inventory", "payment")


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
        handlers = importlib.import_module(f"{consumer}.application").EVENT_HANDLERS
        assert event.name in handlers


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_handles_exactly_what_it_consumes(service: str) -> None:
    declared = {e.name for events in consumed_by(service).values() for e in events}
    handlers = importlib.import_module(f"{service}.application").EVENT_HANDLERS

    assert set(handlers) == declared


@pytest.mark.parametrize("service", SERVICES)
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
        ORDERS: (spec("OrderCancelled"),),
        INVENTORY: (spec("StockReserved"),),
    }


def test_order_consumes_from_inventory_and_payments() -> None:
    grouped = consumed_by("order")

    assert set(grouped) == {INVENTORY, PAYMENTS}
    assert [e.name for e in grouped[PAYMENTS]] == ["PaymentProcessed", "PaymentFailed"]


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
    assert rows["OrderCancelled"].endswith("| inventory, payment |")
    assert rows["OrderConfirmed"].endswith("| — |")

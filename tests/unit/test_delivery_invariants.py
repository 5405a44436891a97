"""The delivery checks must catch a lost event and a duplicated effect, and must not take
a redelivered copy or a dead-lettered event for either."""

from __future__ import annotations

from polysaga_tools.delivery import (
    DELIVERY_INVARIANTS,
    ConsumerState,
    DeliveryFacts,
    StreamEvent,
    evaluate_delivery,
)


def saga() -> list[StreamEvent]:
    """One confirmed order as the streams hold it (notification consumes the outcome)."""
    return [
        StreamEvent("ORDERS", "e1", "OrderPlaced", "o1"),
        StreamEvent("INVENTORY", "e2", "StockReserved", "o1"),
        StreamEvent("PAYMENTS", "e3", "PaymentProcessed", "o1"),
        StreamEvent("ORDERS", "e4", "OrderConfirmed", "o1"),
    ]


def world() -> DeliveryFacts:
    return DeliveryFacts(
        events=saga(),
        handled={
            "inventory": {"e1"},
            "payment": {"e1", "e2"},
            "order": {"e3"},
            "order-view": {"e1", "e2", "e3", "e4"},
            "notification": {"e4"},
        },
        dead_lettered=set(),
        outbox_pending={"order": 0, "inventory": 0},
        outbox_published={"order": {"e1", "e4"}, "inventory": {"e2"}},
        consumers={"inventory on ORDERS": ConsumerState(0, 0)},
    )


def test_a_fully_delivered_saga_holds_every_invariant() -> None:
    report = evaluate_delivery(world())
    assert report.invariants == dict.fromkeys(DELIVERY_INVARIANTS, True)
    assert (report.events, report.copies, report.lost, report.duplicated_effects) == (4, 0, 0, 0)


def test_an_event_a_declared_consumer_never_handled_is_lost() -> None:
    facts = world()
    facts.handled["payment"].discard("e2")  # StockReserved never reached payment
    report = evaluate_delivery(facts)
    assert report.lost == 1 and not report.invariants["no_lost_event"]
    assert "payment never handled StockReserved e2" in report.violations


def test_a_dead_lettered_event_is_accounted_for_not_lost() -> None:
    facts = world()
    facts.handled["payment"].discard("e2")
    facts.dead_lettered.add(("payment", "e2"))
    assert evaluate_delivery(facts).lost == 0


def test_a_dead_letter_by_another_consumer_does_not_cover_this_one() -> None:
    facts = world()
    facts.handled["payment"].discard("e2")
    facts.dead_lettered.add(("order-view", "e2"))
    assert evaluate_delivery(facts).lost == 1


def test_an_outbox_entry_marked_published_but_missing_from_the_stream_is_lost() -> None:
    facts = world()
    facts.outbox_published["order"].add("e9")
    report = evaluate_delivery(facts)
    assert report.lost == 1 and not report.invariants["no_lost_event"]


def test_copies_of_one_event_are_deliveries_not_effects() -> None:
    facts = world()
    facts.events = [*saga(), *saga()[1:3]]  # re-published under new Nats-Msg-Ids
    report = evaluate_delivery(facts)
    assert report.copies == 2 and report.duplicated_effects == 0
    assert all(report.invariants.values())


def test_two_distinct_events_of_one_saga_step_are_a_duplicated_effect() -> None:
    facts = world()
    facts.events = [*saga(), StreamEvent("PAYMENTS", "e5", "PaymentProcessed", "o1")]
    facts.handled["order"].add("e5")
    facts.handled["order-view"].add("e5")
    report = evaluate_delivery(facts)
    assert report.duplicated_effects == 1 and not report.invariants["no_duplicated_effect"]


def test_confirming_and_cancelling_one_order_is_a_duplicated_outcome() -> None:
    facts = world()
    facts.events = [*saga(), StreamEvent("ORDERS", "e6", "OrderCancelled", "o1")]
    assert not evaluate_delivery(facts).invariants["no_duplicated_effect"]


def test_entity_events_of_one_aggregate_are_not_duplicates() -> None:
    facts = world()
    facts.events = [
        *saga(),
        StreamEvent("CATALOG", "p1", "ProductPriceChanged", "tea"),
        StreamEvent("CATALOG", "p2", "ProductPriceChanged", "tea"),
    ]
    facts.handled["order"] |= {"p1", "p2"}
    facts.handled["order-view"] |= {"p1", "p2"}
    report = evaluate_delivery(facts)
    assert report.duplicated_effects == 0 and report.lost == 0


def test_an_unpublished_outbox_entry_breaks_outbox_drained() -> None:
    facts = world()
    facts.outbox_pending = {"order": 2}
    report = evaluate_delivery(facts)
    assert not report.invariants["outbox_drained"]
    assert "order: 2 outbox entries unpublished" in report.violations


def test_an_unacknowledged_message_breaks_consumers_drained() -> None:
    facts = world()
    facts.consumers = {"payment on INVENTORY": ConsumerState(pending=0, ack_pending=1)}
    assert not evaluate_delivery(facts).invariants["consumers_drained"]

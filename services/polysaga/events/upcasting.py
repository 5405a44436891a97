"""Old event versions are upcast, step by step, to the version consumers are written for.

A version with no path to the current one (newer than we know, or an unknown old one) is
refused explicitly: the consumer dead-letters it instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from polysaga.events import declaration
from polysaga.events.envelope import Envelope
from polysaga.money import format_money

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnsupportedVersionError(ValueError):
    """An event version this code cannot turn into the current one."""


def _payment_processed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 carried integer cents; v2 carries money as a two-place decimal string.
    cents = data["amount_cents"]
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError(f"amount_cents must be an integer, not {cents!r}")
    upgraded = {k: v for k, v in data.items() if k != "amount_cents"}
    upgraded["amount"] = format_money(Decimal(cents) / 100)
    return upgraded


# (event name, from version) -> function producing the next version's data.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("PaymentProcessed", 1): _payment_processed_v1_to_v2,
}


def upcast(event: Envelope) -> Envelope:
    try:
        current = declaration.spec(event.name).version
    except declaration.UnknownEventError as exc:
        raise UnsupportedVersionError(f"unknown event type {event.name!r}") from exc
    if event.version > current:
        raise UnsupportedVersionError(
            f"{event.name}.v{event.version} is newer than the known v{current}"
        )
    while event.version < current:
        step = UPCASTERS.get((event.name, event.version))
        if step is None:
            raise UnsupportedVersionError(f"no upcaster from {event.name}.v{event.version}")
        try:
            event = event.with_data(event.version + 1, step(event.data))
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedVersionError(f"cannot upcast {event.name}: {exc}") from exc
    return event

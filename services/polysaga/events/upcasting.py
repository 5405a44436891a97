"""Old event versions are upcast, step by step, to the version consumers are written for.

Each step takes the typed body of one version and returns the next version's. A version
with no path to the current one (newer than we know, or an unknown old one) is refused
explicitly: the consumer dead-letters it instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from polysaga.events import declaration
from polysaga.events import payloads as P
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.money import format_money

Upcaster = Callable[[Any], Payload]


class UnsupportedVersionError(ValueError):
    """An event version this code cannot turn into the current one."""


def _payment_processed_v1_to_v2(old: P.PaymentProcessedV1) -> P.PaymentProcessed:
    # v1 carried integer cents; v2 carries money as a two-place decimal string.
    return P.PaymentProcessed(
        order_id=old.order_id,
        user_id=old.user_id,
        amount=format_money(Decimal(old.amount_cents) / 100),
    )


# (event name, from version) -> function producing the next version's body.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("PaymentProcessed", 1): _payment_processed_v1_to_v2,
}


def readable(name: str, version: int) -> type[Payload]:
    """The body to decode ``name`` at ``version`` with; raises UnsupportedVersionError when
    this code cannot read that version (or does not know the event)."""
    try:
        spec = declaration.spec(name)
    except declaration.UnknownEventError as exc:
        raise UnsupportedVersionError(f"unknown event type {name!r}") from exc
    if version > spec.version:
        raise UnsupportedVersionError(f"{name}.v{version} is newer than the known v{spec.version}")
    payload = spec.payload_of(version)
    if payload is None:
        raise UnsupportedVersionError(f"no upcaster from {name}.v{version}")
    return payload


def upcast_payload(name: str, version: int, data: Payload) -> Payload:
    """``data``, a body of ``name`` at ``version``, as the current version's body."""
    current = declaration.spec(name).version
    while version < current:
        step = UPCASTERS.get((name, version))
        if step is None:
            raise UnsupportedVersionError(f"no upcaster from {name}.v{version}")
        data, version = step(data), version + 1
    return data


def upcast(event: Envelope[Payload]) -> Envelope[Payload]:
    readable(event.name, event.version)
    current = declaration.spec(event.name).version
    if event.version == current:
        return event
    return replace(
        event, version=current, data=upcast_payload(event.name, event.version, event.data)
    )

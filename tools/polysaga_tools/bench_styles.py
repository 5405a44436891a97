"""The saga styles the benchmark measures, each through the same phases: how an order of
that style is placed. A style is only a change to the order request; the saga's end is seen
the same way for every style (OrderConfirmed or OrderCancelled on the ORDERS stream)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SagaStyle:
    name: str
    # Fields merged into each order request's body (e.g. the style an order asks for).
    order_fields: Mapping[str, Any] = field(default_factory=dict)

    def body(self, base: Mapping[str, Any]) -> dict[str, Any]:
        return {**base, **self.order_fields}


CHOREOGRAPHY = SagaStyle("choreography")
# The same saga run by the orchestrator (its commands and replies): the order asks for it.
ORCHESTRATION = SagaStyle("orchestration", {"saga": "orchestration"})

# The first style is the one the top-level figures (and the targets) are about; the JSON's
# "styles" holds every style's own figures side by side.
STYLES: tuple[SagaStyle, ...] = (CHOREOGRAPHY, ORCHESTRATION)

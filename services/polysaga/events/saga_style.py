"""How an order's saga runs: by choreography (each participant reacts to the others' events)
or by orchestration (the orchestrator sends commands and waits for replies). The order fixes
it when it is placed; its events carry it, so a participant in an orchestrated saga leaves
the choreography's events alone and acts on commands only."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class SagaStyle(StrEnum):
    CHOREOGRAPHY = "choreography"
    ORCHESTRATION = "orchestration"


FIELD = "saga"  # where an event's body carries it; absent means choreography


def style_of(data: Mapping[str, Any]) -> SagaStyle:
    return SagaStyle(data.get(FIELD, SagaStyle.CHOREOGRAPHY.value))


def orchestrated(data: Mapping[str, Any]) -> bool:
    return style_of(data) is SagaStyle.ORCHESTRATION

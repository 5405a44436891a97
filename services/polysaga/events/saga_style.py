"""How an order's saga runs: by choreography (each participant reacts to the others' events)
or by orchestration (the orchestrator sends commands and waits for replies). The order fixes
it when it is placed; its events carry it (``saga``, left out for choreography), so a
participant in an orchestrated saga leaves the choreography's events alone and acts on
commands only."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from polysaga.events.payloads import SagaStyleName


class SagaStyle(StrEnum):
    CHOREOGRAPHY = "choreography"
    ORCHESTRATION = "orchestration"

    @property
    def name_in_events(self) -> SagaStyleName:
        return "orchestration" if self is SagaStyle.ORCHESTRATION else "choreography"


class CarriesStyle(Protocol):
    @property
    def saga(self) -> SagaStyleName: ...


def style_of(data: CarriesStyle) -> SagaStyle:
    return SagaStyle(data.saga)


def orchestrated(data: CarriesStyle) -> bool:
    return style_of(data) is SagaStyle.ORCHESTRATION

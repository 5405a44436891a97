"""The orchestrator's HTTP API: an orchestrated saga's state and step history."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import get
from litestar.params import FromPath

from orchestrator import application
from orchestrator.application import NoSagaError
from orchestrator.ports import SagaStore
from polysaga.app import UnitOfWorkParam
from polysaga.problems import ProblemMap, ProblemType


class StepOut(msgspec.Struct):
    step: str
    status: str
    at: datetime
    detail: str | None


class SagaOut(msgspec.Struct):
    order_id: str
    style: str
    state: str
    reason: str | None
    steps: list[StepOut]


# The orchestrator's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    NoSagaError: ProblemType(
        404,
        "No orchestrated saga",
        "no-orchestrated-saga",
        detail="the orchestrator runs no saga for order {exc}: it is unknown, not yet seen,"
        " or placed with the choreography (whose steps are in the order view's summary"
        " history)",
    ),
}


@get("/sagas/{order_id:uuid}", summary="An orchestrated saga: its state and step history")
async def get_saga(order_id: FromPath[UUID], uow: UnitOfWorkParam[SagaStore]) -> SagaOut:
    view = await application.saga_of(uow, str(order_id))
    return SagaOut(
        order_id=view.saga.order_id,
        style="orchestration",
        state=view.saga.state.value,
        reason=view.saga.reason,
        steps=[StepOut(e.step, e.status, e.at, e.detail) for e in view.history],
    )


ROUTES = [get_saga]

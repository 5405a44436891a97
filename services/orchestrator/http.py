"""The orchestrator's HTTP API: an orchestrated saga's state and step history."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from orchestrator.adapters import SagaStore
from polysaga.problems import Problem
from polysaga.runtime import ServiceRuntime


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


@get("/sagas/{order_id:uuid}", summary="An orchestrated saga: its state and step history")
async def get_saga(order_id: FromPath[UUID], runtime: NamedDependency[ServiceRuntime]) -> SagaOut:
    async with runtime.engine.connect() as conn:
        store = SagaStore(conn)
        saga = await store.get(str(order_id))
        history = await store.history(str(order_id)) if saga else []
    if saga is None:
        raise Problem(
            404,
            "No orchestrated saga",
            f"the orchestrator runs no saga for order {order_id}: it is unknown, not yet"
            " seen, or placed with the choreography (whose steps are in the order view's"
            " summary history)",
            slug="no-orchestrated-saga",
        )
    return SagaOut(
        order_id=saga.order_id,
        style="orchestration",
        state=saga.state.value,
        reason=saga.reason,
        steps=[StepOut(**step) for step in history],
    )


ROUTES = [get_saga]

"""The order view's HTTP API: an order's summary (with read-your-writes: wait, bounded, for a
version the caller got from a command), a user's orders paged newest first, and the admin
endpoints that rebuild the view and digest a generation so two can be compared."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter, QueryParameter

from order_view.adapters import ActiveGeneration, ViewStore, generation, stored_generations
from order_view.domain import OrderSummary, SummaryDigest, summary_from_document
from order_view.rebuild import (
    EventHistoryUnavailableError,
    RebuildResult,
    RebuildSupersededError,
    rebuild,
)
from polysaga.api_types import Identifier
from polysaga.problems import Problem, ProblemMap, ProblemType, problem_responses, validated
from polysaga.runtime import ServiceRuntime

_POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class UserOrdersPage:
    orders: list[OrderSummary]
    next_offset: int | None


@dataclass(frozen=True)
class DigestOut:
    generation: int
    count: int
    digest: str


@get(
    "/orders/{order_id:uuid}/summary",
    summary="An order's denormalised summary",
    responses=problem_responses(503),
)
async def get_summary(
    order_id: FromPath[UUID],
    runtime: NamedDependency[ServiceRuntime],
    generations: NamedDependency[ActiveGeneration],
    min_version: Annotated[
        int | None,
        Parameter(ge=1, le=1_000_000, description="Wait until the view has this order version"),
    ] = None,
) -> OrderSummary:
    wait_s = runtime.settings.view_wait_max_s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        view = await generations.for_reading(runtime.mongo_reader)
        doc = await view.summary(str(order_id))
        if doc is not None and (min_version is None or doc["order_version"] >= min_version):
            return summary_from_document(doc)
        if min_version is None:
            raise Problem(404, "Order not found", f"the order view has no order {order_id}")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise Problem(
                503,
                "View not caught up",
                f"order {order_id} has not reached version {min_version} in the view"
                f" within {wait_s:g} s; try again",
                slug="view-not-caught-up",
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )
        await asyncio.sleep(min(_POLL_INTERVAL_S, remaining))


@get("/users/{user_id:str}/orders", summary="A user's order summaries, newest first")
async def get_user_orders(
    user_id: FromPath[str],
    runtime: NamedDependency[ServiceRuntime],
    generations: NamedDependency[ActiveGeneration],
    limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    offset: Annotated[int, Parameter(ge=0, le=100_000)] = 0,
) -> UserOrdersPage:
    validated(user_id, Identifier, "Bad user id")
    view = await generations.for_reading(runtime.mongo_reader)
    docs = await view.user_orders(user_id, limit + 1, offset)
    return UserOrdersPage(
        [summary_from_document(doc) for doc in docs[:limit]],
        offset + limit if len(docs) > limit else None,
    )


@post(
    "/admin/rebuild",
    status_code=200,
    summary="Rebuild the view from event history",
    responses=problem_responses(409, 503),
)
async def rebuild_view(
    runtime: NamedDependency[ServiceRuntime], generations: NamedDependency[ActiveGeneration]
) -> RebuildResult:
    """Events the view cannot apply are skipped and counted (``events_skipped``), never a
    5xx; NATS or the store being unreachable is a 503 (the live generation stays)."""
    if generations.rebuilding.locked():
        raise Problem(409, "Rebuild in progress", "a rebuild is already running here")
    return await rebuild(runtime.js, runtime.mongo, generations)


@get(
    "/admin/digest",
    summary="A digest of a generation's summaries (default: the live one)",
    responses=problem_responses(404),
)
async def view_digest(
    runtime: NamedDependency[ServiceRuntime],
    generations: NamedDependency[ActiveGeneration],
    generation_number: Annotated[int | None, QueryParameter(name="generation", ge=1)] = None,
) -> DigestOut:
    db = runtime.mongo_reader
    number = generation_number or (await generations.for_reading(db)).gen.number
    if number not in await stored_generations(db):
        raise Problem(404, "Unknown generation", f"no generation {number} is stored")
    digest = SummaryDigest()
    async for doc in ViewStore(generation(db, number)).all_summaries():
        digest.add(summary_from_document(doc))
    return DigestOut(number, digest.count, digest.hexdigest())


PROBLEMS: ProblemMap = {
    RebuildSupersededError: ProblemType(409, "Rebuild superseded"),
    EventHistoryUnavailableError: ProblemType(
        503, "Event history unavailable", "event-history-unavailable", retry_after_s=1
    ),
}

ROUTES = [get_summary, get_user_orders, rebuild_view, view_digest]

"""The Litestar app factory every service uses: lifespan that owns the runtime, health and
readiness probes, Prometheus metrics, tracing, OpenAPI, problem details, a request body limit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, TypeVar

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.params import SkipValidation
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from polysaga import __version__, tracing
from polysaga import metrics as m
from polysaga.auth import OperatorCredential, admin_routes_need_operator, is_operator_route
from polysaga.auth.schemes import OPERATOR_TOKEN_SCHEME, SECURITY_SCHEMES
from polysaga.logs import AccessLog
from polysaga.problems import EXCEPTION_HANDLERS, document_problems, domain_problem_handlers
from polysaga.runtime import ServiceDefinition, ServiceRuntime
from polysaga.settings import ServiceSettings
from polysaga.strict_body import StrictStructSchemaPlugin, enforce_strict_body
from polysaga.strict_parameters import enforce_strict_parameters
from polysaga.unit_of_work import UnitOfWork


def provide_runtime(state: State) -> ServiceRuntime:
    runtime: ServiceRuntime = state.runtime
    return runtime


S = TypeVar("S")
# A route's unit of work over the service's store ``S``, injected by the name ``uow``. A
# Protocol cannot be validated, so it is not (the runtime builds it).
UnitOfWorkParam: TypeAlias = NamedDependency[SkipValidation[UnitOfWork[S]]]


def provide_unit_of_work(state: State) -> UnitOfWork[Any]:
    """A fresh unit of work for the request's command or query (routes never open one)."""
    runtime: ServiceRuntime = state.runtime
    return runtime.unit_of_work()


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(runtime: NamedDependency[ServiceRuntime]) -> Response[dict[str, Any]]:
    checks = await runtime.readiness()
    ready = all(checks.values())
    return Response({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


UNMEASURED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
CLIENT_CLOSED_REQUEST = 499


class HttpMetricsMiddleware(ASGIMiddleware):
    """HTTP RED metrics: requests by method, route template and status, and their duration.
    The route is the template (``/orders/{order_id:uuid}``), never the raw path, so the label
    set stays bounded; requests that match no route never reach a route's middleware. The
    same figures go to the (sampled) access log."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, access_log: AccessLog | None = None) -> None:
        self._access_log = access_log or AccessLog(0.0)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        route = scope.get("path_template") or "unmatched"
        if route in UNMEASURED_PATHS:
            await next_app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        tracing.name_http_span(str(method), str(route))
        status = 500
        client_gone = False
        started = time.perf_counter()

        async def watching_receive() -> ReceiveMessage:
            nonlocal client_gone
            message = await receive()
            client_gone = client_gone or message["type"] == "http.disconnect"
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await next_app(scope, watching_receive, recording_send)
        except HTTPException as exc:  # turned into a response by the exception handlers
            status = exc.status_code
            raise
        except Exception:
            status = 500
            raise
        finally:
            if client_gone and status >= 500:
                # The client left before its request was complete (the server closed a
                # connection whose framing was broken, or the client hung up): Litestar
                # calls that a 500 nobody receives. nginx's 499 says what happened.
                status = CLIENT_CLOSED_REQUEST
            m.HTTP_REQUESTS.labels(method=method, route=route, status_code=str(status)).inc()
            elapsed_s = time.perf_counter() - started
            m.HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(elapsed_s)
            self._access_log.record(
                str(method),
                str(route),
                str(scope.get("path", "")),
                status,
                elapsed_s,
                scope.get("path_params") or {},
            )


async def enforce_strict_request(request: Request[Any, Any, Any]) -> None:
    """Every route's parameters and body, checked before Litestar converts them."""
    await enforce_strict_parameters(request)
    await enforce_strict_body(request)


def create_app(definition: ServiceDefinition, settings: ServiceSettings | None = None) -> Litestar:
    settings = settings or ServiceSettings(service_name=definition.name)
    # Before the runtime: its database clients are instrumented as they are created.
    tracing.configure(definition.name, settings)
    otel_plugin = tracing.litestar_plugin()
    runtime = ServiceRuntime(definition, settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            tracing.shutdown()  # exports the spans still buffered

    # A service's own errors first: Litestar picks the handler of the nearest class.
    exception_handlers: dict[type[Exception], Any] = {
        **EXCEPTION_HANDLERS,
        **domain_problem_handlers(definition.problems),
    }
    operator_credential = OperatorCredential(settings.operator_token)
    app = Litestar(
        route_handlers=[healthz, readyz, metrics, *definition.route_handlers],
        state=State({"operator_credential": operator_credential}),
        guards=[admin_routes_need_operator],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "uow": Provide(provide_unit_of_work, sync_to_thread=False),
        },
        lifespan=[lifespan],
        middleware=[HttpMetricsMiddleware(AccessLog(settings.access_log_sample_ratio))],
        before_request=enforce_strict_request,
        plugins=[StrictStructSchemaPlugin(), *([otel_plugin] if otel_plugin else [])],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        request_max_body_size=settings.max_request_body_bytes,
        logging_config=None,  # the process's logging is polysaga.logs' JSON lines, not Litestar's
        openapi_config=OpenAPIConfig(
            title=f"polysaga {definition.name}",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes=SECURITY_SCHEMES),
        ),
    )
    # The registered handlers (a Router registers copies), before the schema is first built.
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            needs_operator = is_operator_route(handler)
            if needs_operator:
                handler.security = [{OPERATOR_TOKEN_SCHEME: []}]
            document_problems(handler, needs_operator=needs_operator)
    return app

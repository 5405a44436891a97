"""RFC 9457 problem details for every error a service returns: a client mistake is a 4xx
with a title and detail; the service's own store being unreachable (a restart) is a 503
with Retry-After; anything unexpected is a 500 that leaks no internals."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from polysaga.mongo.client import is_unavailable as mongo_unavailable
from polysaga.persistence.database import is_data_error
from polysaga.persistence.database import is_unavailable as postgres_unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(HTTPException):
    """Raise from a route for a 4xx with a stable problem ``type`` slug."""

    def __init__(
        self,
        status_code: int,
        title: str,
        detail: str = "",
        *,
        slug: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail or title, status_code=status_code, headers=headers)
        self.title = title
        self.slug = slug


def _response(
    request: Request[Any, Any, Any],
    body: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body.setdefault("instance", request.url.path)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


@dataclass(frozen=True)
class ProblemType:
    """How one kind of domain error reads to a client. ``detail`` is a template over the
    exception's message (``{exc}``); the default is the message itself. ``retry_after_s``:
    the Retry-After header's seconds (for a 503 the client should retry)."""

    status: int
    title: str
    slug: str = ""
    detail: str = "{exc}"
    retry_after_s: int | None = None

    def problem(self, exc: Exception) -> Problem:
        headers = None if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}
        return Problem(
            self.status, self.title, self.detail.format(exc=exc), slug=self.slug, headers=headers
        )


# Each service's domain and application errors and what each one means over HTTP: routes
# raise nothing themselves for these, the app's exception handlers answer with the problem.
ProblemMap = Mapping[type[Exception], ProblemType]


def domain_problem_handlers(
    problems: ProblemMap,
) -> dict[type[Exception], Callable[[Request[Any, Any, Any], Exception], Response[Any]]]:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        for kind in type(exc).__mro__:
            if kind in problems:
                return http_exception_handler(request, problems[kind].problem(exc))
        return internal_error_handler(request, exc)

    return dict.fromkeys(problems, handle)


def validated(value: str, kind: object, title: str) -> str:
    """A path parameter checked against a constrained string type (``polysaga.api_types``);
    a 400 problem naming what is wrong otherwise."""
    try:
        checked: str = msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise Problem(400, title, str(exc)) from exc
    return checked


def http_exception_handler(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    status = exc.status_code
    title = getattr(exc, "title", None) or _default_title(status)
    slug = getattr(exc, "slug", "") or title.lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": f"https://polysaga.io/problems/{slug}",
        "title": title,
        "status": status,
        "detail": exc.detail,
    }
    if isinstance(exc, ValidationException) and exc.extra:
        body["errors"] = exc.extra
    return _response(request, body, status, headers=dict(exc.headers or {}))


def internal_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    if postgres_unavailable(exc) or mongo_unavailable(exc):
        log.warning("store unavailable on %s %s: %r", request.method, request.url.path, exc)
        body = {
            "type": "https://polysaga.io/problems/store-unavailable",
            "title": "Service Unavailable",
            "status": HTTP_503_SERVICE_UNAVAILABLE,
            # Not "nothing was changed": a connection lost during COMMIT leaves that unknown.
            "detail": "The service's database is unavailable; try again (an order with the"
            " same Idempotency-Key).",
        }
        return _response(request, body, HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": "1"})
    if is_data_error(exc):
        # A value the request validation let through and the database refused: still the
        # client's input (the rules in api_types should have caught it; the log says which).
        log.warning("database refused a value on %s %s: %r", request.method, request.url.path, exc)
        body = {
            "type": "https://polysaga.io/problems/invalid-value",
            "title": "Bad Request",
            "status": HTTP_400_BAD_REQUEST,
            "detail": "A value in the request is not one the service can store; nothing was"
            " changed.",
        }
        return _response(request, body, HTTP_400_BAD_REQUEST)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {
        "type": "https://polysaga.io/problems/internal-error",
        "title": "Internal Server Error",
        "status": HTTP_500_INTERNAL_SERVER_ERROR,
        "detail": "An unexpected error occurred; nothing was changed.",
    }
    return _response(request, body, HTTP_500_INTERNAL_SERVER_ERROR)


class ProblemDetails(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET


_MEANINGS = {
    400: "A parameter or the body is invalid; nothing was changed",
    401: "No valid bearer token (see the WWW-Authenticate header); nothing was changed",
    403: "The token is valid but does not allow this; nothing was changed",
    404: "No such resource (or a path parameter of the wrong shape)",
    409: "Conflicts with the current state; nothing was changed",
    413: "The body is larger than the service accepts",
    415: "The body is not JSON",
    422: "Well-formed, but refused by a business rule; nothing was changed",
    502: "An upstream service answered with an error",
    503: "Not available yet; retry after the Retry-After header's seconds",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the problems a route can answer with."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=_MEANINGS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


def document_problems(handler: object, *, needs_operator: bool = False) -> None:
    """Add the problems any route of its shape can answer with to its OpenAPI responses:
    400 for any parameter, 404 for a path parameter, 413 and 415 for a JSON body, 401 for a
    route that needs the operator token. A route's own ``responses`` (409, 422, 503, ...)
    stay as they are."""
    if not isinstance(handler, HTTPRouteHandler):
        return
    statuses = [400, *([401] if needs_operator else [])]
    if any("{" in path for path in handler.paths):
        statuses.append(404)
    if "data" in inspect.signature(handler.fn).parameters:
        statuses += [413, 415]
    handler.responses = {**problem_responses(*statuses), **(handler.responses or {})}


def _default_title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXCEPTION_HANDLERS = {
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "MediaType",
    "Problem",
    "ProblemDetails",
    "ProblemMap",
    "ProblemType",
    "document_problems",
    "domain_problem_handlers",
    "problem_responses",
    "validated",
]

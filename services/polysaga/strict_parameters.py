"""Strict request parameters, checked for every route before Litestar converts them.

Litestar reads parameters leniently: percent-encoded bytes that are not UTF-8 become U+FFFD,
``1e3`` and ``1.0`` pass as integers, a parameter given twice counts once, one the route
does not know is ignored, and a time is taken whatever its range. Here, for every route: the raw
path and query must be UTF-8 once percent-decoded; only the route's own query parameters,
each at most once (unless it is a list) and never empty; no value (path, query or a declared
header) holds a control character (``api_types.unsafe_character``); integers are plain
decimal digits; times carry an offset and stay inside the representable range in UTC."""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Union, get_args, get_origin
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.constants import RESERVED_KWARGS
from litestar.enums import ParamType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg
from litestar.typing import FieldDefinition

from polysaga.api_types import unsafe_character
from polysaga.problems import Problem

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class _Param:
    name: str  # as the client sends it
    kind: str  # "query" | "header"
    scalar_type: type | None  # int or datetime when the value is one; else None
    repeatable: bool


def _non_none(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _scalar_type(field: FieldDefinition) -> type | None:
    for candidate in _non_none(field.annotation):
        if candidate is datetime:
            return datetime
        if candidate is int:
            return int
    return None


# By handler id, with the handler itself: an id is reused once its object is gone.
_DECLARED: dict[int, tuple[HTTPRouteHandler, tuple[_Param, ...]]] = {}


def _declared(handler: HTTPRouteHandler, path_params: set[str]) -> tuple[_Param, ...]:
    """The route's query and header parameters, from its signature (cached per handler)."""
    cached = _DECLARED.get(id(handler))
    if cached is not None and cached[0] is handler:
        return cached[1]
    dependencies = set(handler.resolve_dependencies())
    params: list[_Param] = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in RESERVED_KWARGS or name in dependencies or name in path_params:
            continue
        kwarg = (
            field.kwarg_definition if isinstance(field.kwarg_definition, ParameterKwarg) else None
        )
        kind = kwarg.param_type if kwarg is not None else ParamType.QUERY
        alias = (kwarg.name if kwarg is not None else None) or name
        if kind is ParamType.HEADER:
            params.append(_Param(alias.lower(), "header", None, False))
        if kind is not ParamType.QUERY:
            continue
        repeatable = any(
            FieldDefinition.from_annotation(a).is_non_string_sequence
            for a in _non_none(field.annotation)
        )
        params.append(_Param(alias, "query", _scalar_type(field), repeatable))
    declared = tuple(params)
    _DECLARED[id(handler)] = (handler, declared)
    return declared


def _refuse(detail: str, source: str, key: str) -> ValidationException:
    return ValidationException(
        detail=detail, extra=[{"message": detail, "key": key, "source": source}]
    )


def _decoded(raw: bytes, what: str, key: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(f"{what} is not UTF-8 once percent-decoded", what, key) from exc


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, strictly decoded."""
    pairs = []
    for part in query_string.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _decoded(raw_name.replace(b"+", b" "), "query", "")
        pairs.append((name, _decoded(raw_value.replace(b"+", b" "), "query", name)))
    return pairs


def _check_value(value: str, source: str, key: str, scalar_type: type | None) -> None:
    unsafe = unsafe_character(value)
    if unsafe is not None:
        raise _refuse(f"{source} parameter {key!r} holds {unsafe}", source, key)
    if scalar_type is int and not _INTEGER.fullmatch(value):
        raise _refuse(f"{source} parameter {key!r} must be a decimal integer", source, key)
    if scalar_type is datetime:
        _check_time(value, source, key)


def _check_time(value: str, source: str, key: str) -> None:
    # The same problem slug (bad-<name>) as the route's own checks of the value.
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError as exc:
        raise Problem(400, f"Bad {key}", f"{key} is not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise Problem(400, f"Bad {key}", f"{key} must be an RFC 3339 time with an offset")
    try:
        parsed.astimezone(UTC)
    except OverflowError as exc:
        raise Problem(
            400, f"Bad {key}", f"{key} is outside the years 1 to 9999 once in UTC"
        ) from exc


async def enforce_strict_parameters(request: Request[Any, Any, Any]) -> None:
    """A ``before_request`` check: 400 for any parameter the rules above refuse."""
    handler = request.route_handler
    raw_path = request.scope.get("raw_path") or b""
    path = _decoded(raw_path, "path", "")
    _check_value(path, "path", path, None)  # the path parameters are parts of it

    declared = _declared(handler, set(request.path_params))
    query = {p.name: p for p in declared if p.kind == "query"}
    seen: set[str] = set()
    for name, value in query_pairs(request.scope.get("query_string") or b""):
        param = query.get(name)
        if param is None:
            known = ", ".join(sorted(query)) or "none"
            raise _refuse(f"unknown query parameter {name!r} (known: {known})", "query", name)
        if name in seen and not param.repeatable:
            raise _refuse(f"query parameter {name!r} is given more than once", "query", name)
        seen.add(name)
        if not value:
            raise _refuse(f"query parameter {name!r} is empty", "query", name)
        _check_value(value, "query", name, param.scalar_type)
    for param in declared:
        if param.kind == "header":
            for value in request.headers.getall(param.name, []):
                _check_value(value, "header", param.name, None)

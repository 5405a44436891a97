"""Strict request bodies. Litestar converts bodies leniently (``"1"`` becomes ``1``); a
service that promises strict schemas re-reads the body of every route whose ``data`` is a
StrictStruct and refuses, with a 4xx problem, a body that is: not declared as
``application/json`` (optionally ``charset=utf-8``; 415); not UTF-8; not JSON or not of the
schema (msgspec in strict mode); holding a key twice (JSON leaves that undefined; Python
keeps the last); or holding, anywhere, a character ``api_types.unsafe_character`` names. A
route that takes no body refuses one. The OpenAPI document says the same: a StrictStruct
admits no other properties, and one whose fields are all optional (a change) needs at least
one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import msgspec
from litestar import Request
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import Schema
from litestar.typing import FieldDefinition

from polysaga.api_types import StrictStruct, unsafe_character

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

_JSON_TYPE = "application/json"


def _body_type(request: Request[Any, Any, Any]) -> type[StrictStruct] | None:
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    annotation = getattr(field, "annotation", None)
    # ``data: JSONBody[X]`` is ``Annotated[X, BodyKwarg(...)]``; Litestar usually unwraps it
    # already, but look inside in case the marker is still there.
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, StrictStruct):
        return annotation
    return None


def _takes_body(request: Request[Any, Any, Any]) -> bool:
    return "data" in request.route_handler.parsed_fn_signature.parameters


def _check_media_type(content_type: str) -> None:
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != _JSON_TYPE:
        raise HTTPException(
            status_code=415, detail=f"send the body as application/json, not {media_type!r}"
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise HTTPException(
                status_code=415,
                detail=f"application/json takes no parameter but charset=utf-8, not {param!r}",
            )


class _DuplicateKeyError(ValueError):
    pass


def _pairs_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a decoded JSON document (keys too), with where it is."""
    if isinstance(value, str):
        yield path or "(body)", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}" if path else key, key
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _refuse(detail: str) -> ValidationException:
    return ValidationException(detail=detail, extra=[{"message": detail, "source": "body"}])


def check_json_body(body: bytes, body_type: type[StrictStruct], where: str) -> None:
    """Raise a 400 ValidationException unless ``body`` is a strict instance of the type."""
    if not body.strip():
        raise ValidationException(detail="a JSON request body is required")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(f"the body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        msgspec.json.decode(text, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            detail=f"Validation failed for {where}",
            extra=[{"message": str(exc), "source": "body"}],
        ) from exc
    except msgspec.DecodeError as exc:
        raise ValidationException(detail=f"JSON is malformed: {exc}") from exc
    # The schema holds, so the document is as shallow as the schema: parsing it again with
    # the standard library (which reports duplicate keys) cannot recurse deeply.
    try:
        document = json.loads(text, object_pairs_hook=_pairs_once)
    except _DuplicateKeyError as exc:
        raise _refuse(f"the key {exc} appears twice in one object") from exc
    for location, string in _strings(document):
        unsafe = unsafe_character(string)
        if unsafe is not None:
            raise _refuse(f"{location} holds {unsafe}")


async def enforce_strict_body(request: Request[Any, Any, Any]) -> None:
    """A ``before_request`` hook: 415 for a non-JSON body, 400 for anything else off."""
    body_type = _body_type(request)
    if body_type is None:
        if not _takes_body(request) and (await request.body()):
            raise _refuse(f"{request.method} {request.url.path} takes no request body")
        return
    _check_media_type(request.headers.get("content-type", ""))
    check_json_body(await request.body(), body_type, f"{request.method} {request.url.path}")


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's own msgspec schema (a private class: there is no public hook for this),
    plus ``additionalProperties: false``, and ``minProperties: 1`` when nothing is required."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and (
            field_definition.is_subclass_of(StrictStruct)
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        if not schema.required:
            schema.min_properties = 1
        return schema

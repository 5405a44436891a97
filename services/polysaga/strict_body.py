"""Strict request bodies. Litestar converts bodies leniently (``"1"`` becomes ``1``); a
service that promises strict schemas re-reads the body of every route whose ``data`` is a
StrictStruct with msgspec in strict mode, and refuses a body that is not JSON. The OpenAPI
document says the same: a StrictStruct admits no other properties, and one whose fields are
all optional (a change) needs at least one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import msgspec
from litestar import Request
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import Schema
from litestar.typing import FieldDefinition

from polysaga.api_types import StrictStruct

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

_JSON_TYPES = ("application/json",)


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


async def enforce_strict_body(request: Request[Any, Any, Any]) -> None:
    """A ``before_request`` hook: 415 for a non-JSON body, 400 for any type mismatch."""
    body_type = _body_type(request)
    if body_type is None:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise HTTPException(
            status_code=415, detail=f"send the body as application/json, not {media_type!r}"
        )
    body = await request.body()
    if not body.strip():
        raise ValidationException(detail="a JSON request body is required")
    try:
        msgspec.json.decode(body, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": str(exc), "source": "body"}],
        ) from exc
    except msgspec.DecodeError as exc:
        raise ValidationException(detail=f"JSON is malformed: {exc}") from exc


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

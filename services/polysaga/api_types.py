"""Validated field types shared by every service's HTTP API (strict: bounded lengths,
explicit patterns), so bad input is a 400 before any handler runs."""

from __future__ import annotations

from typing import Annotated

import msgspec

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
# Free text people read (names): no control characters (PostgreSQL cannot even store NUL, in
# a column or in FerretDB's jsonb) and at least one visible character.
VISIBLE_TEXT_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$"

Sku = Annotated[str, msgspec.Meta(pattern=SKU_PATTERN, description="Stock-keeping unit")]
Identifier = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="An entity id")]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
StockLevel = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=500)]


class StrictStruct(msgspec.Struct, forbid_unknown_fields=True):
    """Request bodies reject fields they do not know."""

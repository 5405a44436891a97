"""Validated field types shared by every service's HTTP API (strict: bounded lengths,
explicit patterns), so bad input is a 400 before any handler runs."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import msgspec

# The end of the input, in Python's re and in ECMA-262 (the OpenAPI document's dialect)
# alike. Python's ``$`` also matches before a final newline, so ``^[a-z]+$`` accepts "x\n".
END = r"(?![\s\S])"


def whole(pattern: str) -> str:
    """A pattern that must match the whole value, trailing newline included."""
    return f"^(?:{pattern}){END}"


SKU_PATTERN = whole(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UUID_PATTERN = whole(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ID_PATTERN = whole(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# Free text people read (names): no control characters (PostgreSQL cannot even store NUL, in
# a column or in FerretDB's jsonb) and at least one visible character.
VISIBLE_TEXT_PATTERN = whole(
    r"[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*"
)

Sku = Annotated[str, msgspec.Meta(pattern=SKU_PATTERN, description="Stock-keeping unit")]
Identifier = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="An entity id")]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
StockLevel = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=500)]

# Characters no value of any request may hold, whatever its field: C0 and C1 controls and
# DEL (PostgreSQL cannot store NUL; a newline or an escape forges log lines and mail
# headers), the line and paragraph separators, and the bidirectional embeddings, overrides
# and isolates, which make text display other than it reads.
_UNSAFE = re.compile("[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` no request may hold, named (``U+000A control character``)."""
    found = _UNSAFE.search(text)
    if found is None:
        return None
    char = found.group()
    return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"


class StrictStruct(msgspec.Struct, forbid_unknown_fields=True):
    """Request bodies reject fields they do not know."""

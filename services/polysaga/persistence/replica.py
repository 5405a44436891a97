"""A service's copy of another service's entity (a replica row), kept by a version-guarded
upsert: a newer version replaces the row, an older or repeated one changes nothing, so events
may arrive late, twice or out of order and the copy still ends at the newest version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import column, func, table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def upsert_if_newer(
    conn: AsyncConnection,
    table_name: str,
    key: str,
    row: Mapping[str, Any],
    *,
    version: str = "version",
    touched: str | None = "updated_at",
) -> bool:
    """Insert ``row`` into ``table_name``, or replace the row with the same ``key`` if its
    ``version`` column is lower than ``row``'s; ``touched`` (if any) is set to now() on a
    replace. True if the row was written; False if the stored one is as new or newer.
    ``key`` must be the table's primary key (or a unique column)."""
    for needed in (key, version):
        if needed not in row:
            raise ValueError(f"the replica row for {table_name} needs its {needed!r} column")
    columns = [*row, *([touched] if touched is not None and touched not in row else [])]
    target = table(table_name, *(column(name) for name in columns))
    statement = insert(target).values(dict(row))
    replace: dict[str, Any] = {name: statement.excluded[name] for name in row if name != key}
    if touched is not None:
        replace[touched] = func.now()
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_=replace,
        where=target.c[version] < statement.excluded[version],
    )
    result = await conn.execute(statement)
    return bool(result.rowcount == 1)

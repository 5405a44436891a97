"""What the user service's application needs from its store, as the service owns it: one
record per user, e-mail addresses unique regardless of case, each change written with the
events it causes. ``user.adapters`` implements it on PostgreSQL, the unit tests in memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from user.domain import User, UserEvent


class UserStore(Protocol):
    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        """The user, locked until this unit of work ends when ``for_update``."""
        ...

    async def add(self, user: User, events: Sequence[UserEvent]) -> None:
        """A new user and its events; raises EmailTakenError for an address in use."""
        ...

    async def save(self, user: User, events: Sequence[UserEvent]) -> None:
        """A changed user (read ``for_update`` in this unit) and its events; raises
        EmailTakenError for an address in use."""
        ...

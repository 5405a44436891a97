"""The user store in memory, with the same case-insensitive unique e-mail addresses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fakes import FakeUnitOfWork
from polysaga.unit_of_work import UnitOfWork
from user.domain import EmailTakenError, User, UserEvent
from user.ports import UserStore


class FakeUserStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.published: list[UserEvent] = []

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        return self.users.get(user_id)

    async def add(self, user: User, events: Sequence[UserEvent]) -> None:
        self._check_email(user)
        self.users[user.user_id] = user
        self.published.extend(events)

    async def save(self, user: User, events: Sequence[UserEvent]) -> None:
        self._check_email(user)
        self.users[user.user_id] = user
        self.published.extend(events)

    def _check_email(self, user: User) -> None:
        for other in self.users.values():
            if other.user_id != user.user_id and other.email.lower() == user.email.lower():
                raise EmailTakenError(user.email)


def user_unit(store: FakeUserStore) -> FakeUnitOfWork[FakeUserStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fake is a UserStore, and its unit a UnitOfWork of one.
_conforms: Callable[[FakeUserStore], UnitOfWork[UserStore]] = user_unit

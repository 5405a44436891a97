"""User commands and queries, each in one unit of work over the user store (``user.ports``):
register, change a profile, read one. The user service reacts to no events, so its handler
map is empty."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from polysaga.events.envelope import Envelope
from polysaga.unit_of_work import UnitOfWork
from user.domain import User, UserNotFoundError
from user.ports import UserStore

UserUnit = UnitOfWork[UserStore]


async def register_user(uow: UserUnit, name: str, email: str, now: datetime) -> User:
    user, event = User.register(str(uuid.uuid4()), name, email, now)
    async with uow:
        await uow.store.add(user, [event])
        await uow.commit()
    return user


async def update_profile(
    uow: UserUnit,
    user_id: str,
    now: datetime,
    *,
    name: str | None = None,
    email: str | None = None,
) -> User:
    async with uow:
        user = await uow.store.get(user_id, for_update=True)
        if user is None:
            raise UserNotFoundError(user_id)
        changed, events = user.update(now, name=name, email=email)
        if events:
            await uow.store.save(changed, events)
            await uow.commit()
    return changed


async def get_user(uow: UserUnit, user_id: str) -> User:
    async with uow:
        user = await uow.store.get(user_id)
    if user is None:
        raise UserNotFoundError(user_id)
    return user


Reaction = Callable[[Envelope[Any], UserStore], Awaitable[None]]

EVENT_HANDLERS: dict[str, Reaction] = {}

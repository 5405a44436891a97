"""User commands: register and change a profile. The user service reacts to no events, so
its handler map is empty."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from polysaga.events.envelope import Envelope
from user.adapters import UserStore
from user.domain import User, UserNotFoundError


async def register_user(store: UserStore, name: str, email: str, now: datetime) -> User:
    user, event = User.register(str(uuid.uuid4()), name, email, now)
    await store.add(user, [event])
    return user


async def update_profile(
    store: UserStore,
    user_id: str,
    now: datetime,
    *,
    name: str | None = None,
    email: str | None = None,
) -> User:
    user = await store.get(user_id, for_update=True)
    if user is None:
        raise UserNotFoundError(user_id)
    changed, events = user.update(now, name=name, email=email)
    if events:
        await store.save(changed, events)
    return changed


Reaction = Callable[[Envelope[Any], UserStore], Awaitable[None]]

EVENT_HANDLERS: dict[str, Reaction] = {}

"""A user's profile and the rule for what a change to it publishes: every event carries the
full profile and its version, so a replica can apply the newest one it sees and ignore the
rest. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from polysaga.events import payloads as P


class UserNotFoundError(LookupError):
    pass


class EmailTakenError(Exception):
    """Another user already registered this e-mail address (compared case-insensitively)."""


# One fact about a user: the body of a declared event type.
UserEvent = P.UserRegistered | P.UserProfileUpdated


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    email: str
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def register(user_id: str, name: str, email: str, now: datetime) -> tuple[User, UserEvent]:
        user = User(user_id, name, email, 1, now, now)
        return user, user.profile(P.UserRegistered)

    def update(
        self, now: datetime, *, name: str | None = None, email: str | None = None
    ) -> tuple[User, list[UserEvent]]:
        """The changed user and what it publishes; a change that changes nothing is no
        change: same version, no event."""
        new_name = self.name if name is None else name
        new_email = self.email if email is None else email
        if (new_name, new_email) == (self.name, self.email):
            return self, []
        user = replace(
            self, name=new_name, email=new_email, version=self.version + 1, updated_at=now
        )
        return user, [user.profile(P.UserProfileUpdated)]

    def profile(self, event: type[UserEvent]) -> UserEvent:
        """The whole profile at this version, as the body of ``event``."""
        return event(
            user_id=UUID(self.user_id), name=self.name, email=self.email, version=self.version
        )

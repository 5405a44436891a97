"""A user's profile and the rule for what a change to it publishes: every event carries the
full profile and its version, so a replica can apply the newest one it sees and ignore the
rest. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


class UserNotFoundError(LookupError):
    pass


class EmailTakenError(Exception):
    """Another user already registered this e-mail address (compared case-insensitively)."""


@dataclass(frozen=True)
class UserEvent:
    """One fact about a user; ``name`` is a declared event type."""

    name: str
    data: dict[str, Any]


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
        return user, UserEvent("UserRegistered", user.profile())

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
        return user, [UserEvent("UserProfileUpdated", user.profile())]

    def profile(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "version": self.version,
        }

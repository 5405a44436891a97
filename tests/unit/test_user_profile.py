"""The user's rules without servers: what registering and changing a profile publish, and
which request bodies the API accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID

import msgspec
import pytest

from polysaga.events import payloads as P
from user.adapters import UserStore
from user.application import EVENT_HANDLERS, register_user, update_profile
from user.domain import User, UserEvent, UserNotFoundError
from user.http import ProfileChangeIn, RegisterIn

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
U1 = "0e6f2c1a-7b3d-4a5e-9f8c-1d2e3f4a5b6c"
LATER = NOW + timedelta(minutes=1)


def ada() -> User:
    user, _ = User.register(U1, "Ada", "ada@example.com", NOW)
    return user


def test_registering_publishes_the_profile_at_version_1() -> None:
    user, event = User.register(U1, "Ada", "ada@example.com", NOW)

    assert (user.version, user.created_at, user.updated_at) == (1, NOW, NOW)
    assert event == P.UserRegistered(
        user_id=UUID(U1), name="Ada", email="ada@example.com", version=1
    )


@pytest.mark.parametrize(
    ("name", "email", "expected"),
    [
        ("Ada L", None, ("Ada L", "ada@example.com")),
        (None, "ada@l.example", ("Ada", "ada@l.example")),
        ("Ada L", "ada@l.example", ("Ada L", "ada@l.example")),
        ("Ada", "ADA@example.com", ("Ada", "ADA@example.com")),
    ],
)
def test_a_change_publishes_the_full_profile_at_the_next_version(
    name: str | None, email: str | None, expected: tuple[str, str]
) -> None:
    changed, events = ada().update(LATER, name=name, email=email)

    assert (changed.name, changed.email, changed.version) == (*expected, 2)
    assert (changed.created_at, changed.updated_at) == (NOW, LATER)
    assert events == [
        P.UserProfileUpdated(user_id=UUID(U1), name=expected[0], email=expected[1], version=2)
    ]


@pytest.mark.parametrize(
    ("name", "email"),
    [(None, None), ("Ada", None), (None, "ada@example.com"), ("Ada", "ada@example.com")],
)
def test_a_change_that_changes_nothing_publishes_nothing(
    name: str | None, email: str | None
) -> None:
    user = ada()

    changed, events = user.update(LATER, name=name, email=email)

    assert (changed, events) == (user, [])


def test_versions_count_only_real_changes() -> None:
    user = ada()
    versions = []
    for name in ["B", "C", "C", "D"]:
        user, _ = user.update(LATER, name=name)
        versions.append(user.version)

    assert versions == [2, 3, 3, 4]


class FakeUserStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.published: list[UserEvent] = []

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        return self.users.get(user_id)

    async def add(self, user: User, events: list[UserEvent]) -> None:
        self.users[user.user_id] = user
        self.published.extend(events)

    async def save(self, user: User, events: list[UserEvent]) -> None:
        self.users[user.user_id] = user
        self.published.extend(events)


async def test_commands_write_the_state_with_its_events() -> None:
    fake = FakeUserStore()
    store = cast(UserStore, fake)

    user = await register_user(store, "Ada", "ada@example.com", NOW)
    same = await update_profile(store, user.user_id, LATER, name="Ada")
    changed = await update_profile(store, user.user_id, LATER, email="ada@l.example")

    assert same.version == 1
    assert changed.version == 2
    assert [type(e) for e in fake.published] == [P.UserRegistered, P.UserProfileUpdated]
    assert fake.users[user.user_id] == changed
    with pytest.raises(UserNotFoundError):
        await update_profile(store, "nobody", LATER, name="X")


def test_the_user_service_consumes_nothing() -> None:
    assert EVENT_HANDLERS == {}


@pytest.mark.parametrize(
    "email",
    ["ada@example.com", "a.b+tag@sub.example.co.uk", "x@a-b.io", "O'Brien@example.ie"],
)
def test_plausible_addresses_are_accepted(email: str) -> None:
    body = msgspec.json.encode({"name": "Ada", "email": email})

    assert msgspec.json.decode(body, type=RegisterIn, strict=True).email == email


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada @example.com",
        "ada@-example.com",
        "ada@example..com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_implausible_addresses_are_refused(email: str) -> None:
    body = msgspec.json.encode({"name": "Ada", "email": email})

    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=RegisterIn, strict=True)


@pytest.mark.parametrize(
    "body",
    [b'{"name": ""}', b'{"name": "  "}', b'{"name": null}', b'{"nick": "A"}', b'{"email": 1}'],
)
def test_bad_profile_changes_are_refused(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=ProfileChangeIn, strict=True)


def test_a_profile_change_may_leave_fields_out() -> None:
    change = msgspec.json.decode(b'{"name": "Ada"}', type=ProfileChangeIn, strict=True)

    assert change.name == "Ada"
    assert change.email is msgspec.UNSET

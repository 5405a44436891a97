"""The user's rules without servers: what registering and changing a profile publish, and
which request bodies the API accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from fakes import FakeUnitOfWork
from fakes.user import FakeUserStore
from polysaga.events import payloads as P
from user.application import EVENT_HANDLERS, get_user, register_user, update_profile
from user.domain import EmailTakenError, User, UserNotFoundError
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


async def test_commands_write_the_state_with_its_events_in_one_unit_each() -> None:
    fake = FakeUserStore()
    unit = FakeUnitOfWork(fake)

    user = await register_user(unit, "Ada", "ada@example.com", NOW)
    same = await update_profile(unit, user.user_id, LATER, name="Ada")
    changed = await update_profile(unit, user.user_id, LATER, email="ada@l.example")

    assert same.version == 1
    assert changed.version == 2
    assert [type(e) for e in fake.published] == [P.UserRegistered, P.UserProfileUpdated]
    assert fake.users[user.user_id] == changed
    assert await get_user(unit, user.user_id) == changed
    # Registering and the real change committed; the change that changed nothing did not.
    assert unit.commits == 2
    with pytest.raises(UserNotFoundError):
        await update_profile(unit, "nobody", LATER, name="X")
    with pytest.raises(UserNotFoundError):
        await get_user(unit, "nobody")


async def test_a_taken_address_commits_nothing() -> None:
    fake = FakeUserStore()
    unit = FakeUnitOfWork(fake)
    await register_user(unit, "Ada", "ada@example.com", NOW)

    with pytest.raises(EmailTakenError):
        await register_user(unit, "Other Ada", "ADA@example.com", NOW)

    assert unit.commits == 1 and len(fake.users) == 1


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

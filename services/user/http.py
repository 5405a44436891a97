"""The user service's HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from polysaga.api_types import VISIBLE_TEXT_PATTERN, StrictStruct, whole
from polysaga.problems import Problem, problem_responses
from polysaga.runtime import ServiceRuntime
from user.adapters import UserStore
from user.application import register_user, update_profile
from user.domain import EmailTakenError, User, UserNotFoundError

# The WHATWG form-validation shape: a local part, "@", and a dotted domain of DNS labels.
EMAIL_PATTERN = whole(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)

UserName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, pattern=VISIBLE_TEXT_PATTERN, description="Display name"
    ),
]
Email = Annotated[
    str,
    msgspec.Meta(max_length=254, pattern=EMAIL_PATTERN, examples=["ada@example.com"]),
]


class RegisterIn(StrictStruct):
    name: UserName
    email: Email


class ProfileChangeIn(StrictStruct):
    name: UserName | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET


class RegisteredOut(msgspec.Struct):
    user_id: str


class UserOut(msgspec.Struct):
    user_id: str
    name: str
    email: str
    version: int
    created_at: datetime
    updated_at: datetime


def _user_out(user: User) -> UserOut:
    return UserOut(
        user.user_id, user.name, user.email, user.version, user.created_at, user.updated_at
    )


def _email_taken(exc: EmailTakenError) -> Problem:
    return Problem(
        409, "E-mail taken", f"another user already has the address {exc}", slug="email-taken"
    )


@post("/users", summary="Register a user", responses=problem_responses(409))
async def register(
    data: JSONBody[RegisterIn], runtime: NamedDependency[ServiceRuntime]
) -> RegisteredOut:
    try:
        async with runtime.transaction() as conn:
            user = await register_user(UserStore(conn), data.name, data.email, datetime.now(UTC))
    except EmailTakenError as exc:
        raise _email_taken(exc) from exc
    return RegisteredOut(user.user_id)


@get("/users/{user_id:uuid}", summary="A user's profile")
async def get_user(user_id: FromPath[UUID], runtime: NamedDependency[ServiceRuntime]) -> UserOut:
    async with runtime.engine.connect() as conn:
        user = await UserStore(conn).get(str(user_id))
    if user is None:
        raise Problem(404, "User not found", f"no user {user_id}", slug="unknown-user")
    return _user_out(user)


@patch(
    "/users/{user_id:uuid}",
    summary="Change a user's name and/or e-mail",
    responses=problem_responses(409),
)
async def change_profile(
    user_id: FromPath[UUID],
    data: JSONBody[ProfileChangeIn],
    runtime: NamedDependency[ServiceRuntime],
) -> UserOut:
    name = data.name or None
    email = data.email or None
    if name is None and email is None:
        raise Problem(400, "Nothing to change", "send at least one of name, email")
    try:
        async with runtime.transaction() as conn:
            user = await update_profile(
                UserStore(conn), str(user_id), datetime.now(UTC), name=name, email=email
            )
    except UserNotFoundError as exc:
        raise Problem(404, "User not found", f"no user {user_id}", slug="unknown-user") from exc
    except EmailTakenError as exc:
        raise _email_taken(exc) from exc
    return _user_out(user)


ROUTES = [register, get_user, change_profile]

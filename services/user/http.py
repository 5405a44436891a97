"""The user service's HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import get, patch, post
from litestar.params import FromPath, JSONBody

from polysaga.api_types import VISIBLE_TEXT_PATTERN, StrictStruct, whole
from polysaga.app import UnitOfWorkParam
from polysaga.problems import Problem, ProblemMap, ProblemType, problem_responses
from user import application
from user.domain import EmailTakenError, User, UserNotFoundError
from user.ports import UserStore

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


# The user service's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    EmailTakenError: ProblemType(
        409, "E-mail taken", "email-taken", detail="another user already has the address {exc}"
    ),
    UserNotFoundError: ProblemType(404, "User not found", "unknown-user", detail="no user {exc}"),
}


@post("/users", summary="Register a user", responses=problem_responses(409))
async def register(data: JSONBody[RegisterIn], uow: UnitOfWorkParam[UserStore]) -> RegisteredOut:
    user = await application.register_user(uow, data.name, data.email, datetime.now(UTC))
    return RegisteredOut(user.user_id)


@get("/users/{user_id:uuid}", summary="A user's profile")
async def get_user(user_id: FromPath[UUID], uow: UnitOfWorkParam[UserStore]) -> UserOut:
    return _user_out(await application.get_user(uow, str(user_id)))


@patch(
    "/users/{user_id:uuid}",
    summary="Change a user's name and/or e-mail",
    responses=problem_responses(409),
)
async def change_profile(
    user_id: FromPath[UUID], data: JSONBody[ProfileChangeIn], uow: UnitOfWorkParam[UserStore]
) -> UserOut:
    name = data.name or None
    email = data.email or None
    if name is None and email is None:
        raise Problem(400, "Nothing to change", "send at least one of name, email")
    user = await application.update_profile(
        uow, str(user_id), datetime.now(UTC), name=name, email=email
    )
    return _user_out(user)


ROUTES = [register, get_user, change_profile]

"""Payment's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get, put
from litestar.params import FromPath, JSONBody, Parameter

from payment import application
from payment.application import NoAccountError
from payment.ports import PaymentStore
from polysaga.api_types import UUID_PATTERN, Identifier, StrictStruct
from polysaga.app import UnitOfWorkParam
from polysaga.auth import require_operator
from polysaga.money import MoneyText, format_money, parse_money
from polysaga.problems import ProblemMap, ProblemType, validated


class BalanceIn(StrictStruct):
    balance: MoneyText


class AccountOut(msgspec.Struct):
    user_id: str
    balance: str


class PaymentOut(msgspec.Struct):
    order_id: str
    user_id: str
    amount: str
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


# Payment's errors as problems: routes let them through (``polysaga.problems``).
PROBLEMS: ProblemMap = {
    NoAccountError: ProblemType(404, "No account", "unknown-account", "no account for {exc}"),
}


@put(
    "/accounts/{user_id:str}",
    summary="Open an account or set its balance (operator)",
    guards=[require_operator],
)
async def set_account(
    user_id: FromPath[str], data: JSONBody[BalanceIn], uow: UnitOfWorkParam[PaymentStore]
) -> AccountOut:
    user_id = validated(user_id, Identifier, "Bad user id")
    balance = await application.set_balance(uow, user_id, parse_money(data.balance))
    return AccountOut(user_id, format_money(balance))


@get("/accounts/{user_id:str}", summary="An account's balance")
async def get_account(user_id: FromPath[str], uow: UnitOfWorkParam[PaymentStore]) -> AccountOut:
    user_id = validated(user_id, Identifier, "Bad user id")
    return AccountOut(user_id, format_money(await application.balance_of(uow, user_id)))


@get("/payments", summary="Payments of an order (at most one charge per order)")
async def list_payments(
    uow: UnitOfWorkParam[PaymentStore],
    order_id: Annotated[str, Parameter(pattern=UUID_PATTERN)],
) -> list[PaymentOut]:
    return [
        PaymentOut(
            payment.order_id,
            payment.user_id,
            format_money(payment.amount),
            payment.status.value,
            payment.reason,
            payment.created_at,
            payment.updated_at,
        )
        for payment in await application.payments_of(uow, order_id)
    ]


ROUTES: list[Any] = [set_account, get_account, list_payments]

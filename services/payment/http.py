"""Payment's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from payment.adapters import PaymentStore
from polysaga.api_types import UUID_PATTERN, Identifier, StrictStruct
from polysaga.auth import require_operator
from polysaga.money import MoneyText, format_money, parse_money
from polysaga.problems import Problem
from polysaga.runtime import ServiceRuntime


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


def _user(user_id: str) -> str:
    try:
        return msgspec.convert(user_id, Identifier)
    except msgspec.ValidationError as exc:
        raise Problem(400, "Bad user id", str(exc)) from exc


@put(
    "/accounts/{user_id:str}",
    summary="Open an account or set its balance (operator)",
    guards=[require_operator],
)
async def set_account(
    user_id: FromPath[str], data: JSONBody[BalanceIn], runtime: NamedDependency[ServiceRuntime]
) -> AccountOut:
    user_id = _user(user_id)
    async with runtime.transaction() as conn:
        balance = await PaymentStore(conn).set_balance(user_id, parse_money(data.balance))
    return AccountOut(user_id, format_money(balance))


@get("/accounts/{user_id:str}", summary="An account's balance")
async def get_account(
    user_id: FromPath[str], runtime: NamedDependency[ServiceRuntime]
) -> AccountOut:
    user_id = _user(user_id)
    async with runtime.engine.connect() as conn:
        balance = await PaymentStore(conn).balance(user_id)
    if balance is None:
        raise Problem(404, "No account", f"no account for {user_id}", slug="unknown-account")
    return AccountOut(user_id, format_money(balance))


@get("/payments", summary="Payments of an order (at most one charge per order)")
async def list_payments(
    runtime: NamedDependency[ServiceRuntime],
    order_id: Annotated[str, Parameter(pattern=UUID_PATTERN)],
) -> list[PaymentOut]:
    async with runtime.engine.connect() as conn:
        payment = await PaymentStore(conn).payment(order_id)
    if payment is None:
        return []
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
    ]


ROUTES: list[Any] = [set_account, get_account, list_payments]

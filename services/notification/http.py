"""Notification's HTTP API: what was sent for an order."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.params import Parameter

from notification import application
from notification.ports import NotificationStore
from polysaga.api_types import UUID_PATTERN
from polysaga.app import UnitOfWorkParam


class NotificationOut(msgspec.Struct):
    order_id: str
    outcome: str
    to: str
    subject: str
    message_id: str
    sent_at: datetime


@get("/notifications", summary="The e-mails sent about an order (at most one per outcome)")
async def list_notifications(
    uow: UnitOfWorkParam[NotificationStore],
    order_id: Annotated[str, Parameter(pattern=UUID_PATTERN)],
) -> list[NotificationOut]:
    sent = await application.notifications_of(uow, order_id.lower())
    return [
        NotificationOut(
            n.order_id, n.outcome.value, n.recipient, n.subject, n.message_id, n.sent_at
        )
        for n in sent
    ]


ROUTES = [list_notifications]

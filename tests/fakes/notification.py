"""Notification's store in memory (the version-guarded address replica, one record per
order and outcome) and a mailer that keeps what it is given."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from fakes import FakeUnitOfWork
from notification.domain import Outcome, Recipient
from notification.ports import Mailer, Notification, NotificationStore
from polysaga.unit_of_work import UnitOfWork

SENDER = "orders@polysaga.local"


class FakeNotificationStore:
    def __init__(self) -> None:
        self.recipients: dict[str, Recipient] = {}
        self.sent: dict[tuple[str, Outcome], Notification] = {}
        self.locks: list[tuple[str, Outcome]] = []

    async def save_recipient(self, recipient: Recipient) -> bool:
        known = self.recipients.get(recipient.user_id)
        if known is not None and known.version >= recipient.version:
            return False
        self.recipients[recipient.user_id] = recipient
        return True

    async def recipient(self, user_id: str) -> Recipient | None:
        return self.recipients.get(user_id)

    async def lock_outcome(self, order_id: str, outcome: Outcome) -> None:
        self.locks.append((order_id, outcome))

    async def notification(self, order_id: str, outcome: Outcome) -> Notification | None:
        return self.sent.get((order_id, outcome))

    async def notifications_of(self, order_id: str) -> list[Notification]:
        mine = [n for (o, _), n in self.sent.items() if o == order_id]
        return sorted(mine, key=lambda n: (n.sent_at, n.outcome.value))

    async def record(self, notification: Notification) -> None:
        key = (notification.order_id, notification.outcome)
        assert key not in self.sent, "unique (order_id, outcome) violated"
        self.sent[key] = notification


class KeepingMailer:
    sender = SENDER

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.messages.append(message)


def notification_unit(store: FakeNotificationStore) -> FakeUnitOfWork[FakeNotificationStore]:
    return FakeUnitOfWork(store)


# Checked by mypy: the fakes implement the ports.
_conforms: Callable[[FakeNotificationStore], UnitOfWork[NotificationStore]] = notification_unit
_mailer: Callable[[], Mailer] = KeepingMailer

"""What notification's application needs, as the service owns it: its store (a replica of
users' addresses, and the record of what was sent, one per order and outcome) and a mailer.
``notification.adapters`` implements both (PostgreSQL, SMTP), the unit tests in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from notification.domain import Outcome, Recipient


@dataclass(frozen=True)
class Notification:
    order_id: str
    outcome: Outcome
    user_id: str
    recipient: str
    subject: str
    message_id: str
    event_id: str
    sent_at: datetime


class NotificationStore(Protocol):
    async def save_recipient(self, recipient: Recipient) -> bool:
        """Keep the address unless a newer version is known; False when it changed nothing."""
        ...

    async def recipient(self, user_id: str) -> Recipient | None: ...

    async def lock_outcome(self, order_id: str, outcome: Outcome) -> None:
        """Serialise everything done for one (order, outcome) until this unit of work ends."""
        ...

    async def notification(self, order_id: str, outcome: Outcome) -> Notification | None: ...

    async def notifications_of(self, order_id: str) -> list[Notification]: ...

    async def record(self, notification: Notification) -> None: ...


class Mailer(Protocol):
    sender: str  # the From address

    async def send(self, message: EmailMessage) -> None:
        """Return once the mail server has accepted the message; raise otherwise."""

"""Notification's adapters: the PostgreSQL store (replica of addresses, record of what was
sent) and the SMTP mailer.

The record's primary key (order_id, outcome) is the lasting guard against a second e-mail
for the same outcome; the inbox only guards one event id, and is pruned after a while."""

from __future__ import annotations

import asyncio
import logging
import queue
import smtplib
from email.message import EmailMessage

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from notification.domain import Outcome, Recipient
from notification.ports import Notification
from polysaga.messaging.consumer import PermanentFailure
from polysaga.persistence.database import Migration
from polysaga.persistence.locks import lock_until_commit
from polysaga.persistence.replica import upsert_if_newer

log = logging.getLogger(__name__)

MIGRATIONS = (
    Migration(
        "notification",
        1,
        (
            "CREATE TABLE recipients ("
            " user_id text PRIMARY KEY,"
            " name text NOT NULL,"
            " email text NOT NULL,"
            " version bigint NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            "CREATE TABLE notifications ("
            " order_id uuid NOT NULL,"
            " outcome text NOT NULL CHECK (outcome IN ('confirmed', 'cancelled')),"
            " user_id text NOT NULL,"
            " recipient text NOT NULL,"
            " subject text NOT NULL,"
            " message_id text NOT NULL UNIQUE,"
            " event_id uuid NOT NULL,"
            " sent_at timestamptz NOT NULL,"
            " PRIMARY KEY (order_id, outcome))",
        ),
    ),
)

# Long enough for a slow relay, well inside the consumer's ack wait (kept alive anyway).
SMTP_TIMEOUT_S = 10.0


class PostgresNotificationStore:
    """Notification's store (``notification.ports.NotificationStore``) on one connection,
    inside the transaction of the unit of work that made it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def save_recipient(self, recipient: Recipient) -> bool:
        """Upsert guarded by version: an older or repeated update changes nothing (False)."""
        return await upsert_if_newer(
            self._conn,
            "recipients",
            "user_id",
            {
                "user_id": recipient.user_id,
                "name": recipient.name,
                "email": recipient.email,
                "version": recipient.version,
            },
        )

    async def recipient(self, user_id: str) -> Recipient | None:
        row = (
            await self._conn.execute(
                text("SELECT user_id, name, email, version FROM recipients WHERE user_id = :id"),
                {"id": user_id},
            )
        ).first()
        return None if row is None else Recipient(row.user_id, row.name, row.email, row.version)

    async def lock_outcome(self, order_id: str, outcome: Outcome) -> None:
        """Serialise everything done for one (order, outcome) until this transaction ends, so
        two deliveries handled at once cannot both send."""
        await lock_until_commit(self._conn, "notification", order_id, outcome.value)

    async def notification(self, order_id: str, outcome: Outcome) -> Notification | None:
        rows = await self._select("WHERE order_id = :id AND outcome = :outcome", order_id, outcome)
        return rows[0] if rows else None

    async def notifications_of(self, order_id: str) -> list[Notification]:
        return await self._select("WHERE order_id = :id ORDER BY sent_at, outcome", order_id)

    async def record(self, notification: Notification) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO notifications (order_id, outcome, user_id, recipient, subject,"
                " message_id, event_id, sent_at) VALUES (:order_id, :outcome, :user_id,"
                " :recipient, :subject, :message_id, :event_id, :sent_at)"
            ),
            {
                "order_id": notification.order_id,
                "outcome": notification.outcome.value,
                "user_id": notification.user_id,
                "recipient": notification.recipient,
                "subject": notification.subject,
                "message_id": notification.message_id,
                "event_id": notification.event_id,
                "sent_at": notification.sent_at,
            },
        )

    async def _select(
        self, where: str, order_id: str, outcome: Outcome | None = None
    ) -> list[Notification]:
        rows = await self._conn.execute(
            text(
                "SELECT order_id::text AS order_id, outcome, user_id, recipient, subject,"
                f" message_id, event_id::text AS event_id, sent_at FROM notifications {where}"
            ),
            {"id": order_id} | ({"outcome": outcome.value} if outcome else {}),
        )
        return [
            Notification(
                r.order_id,
                Outcome(r.outcome),
                r.user_id,
                r.recipient,
                r.subject,
                r.message_id,
                r.event_id,
                r.sent_at,
            )
            for r in rows
        ]


class MailRefusedError(PermanentFailure):
    """The mail server refused the message for good (a 5xx reply to the sender, a recipient
    or the data): sending it again cannot succeed, so it is dead-lettered at once."""


class MailDeferredError(Exception):
    """The mail server declined this message for now (a 4xx reply): retried with backoff,
    then dead-lettered. Deliberately not an OSError: that would read as the service's own
    store being down and be retried in place, holding up the stream behind one message."""


class SmtpMailer:
    """Hands a message to an SMTP server; smtplib blocks, so it runs in a worker thread.

    Returns once the server accepted the message for every recipient; raises otherwise,
    and the caller's transaction rolls back: MailRefusedError for a 5xx reply (dead-lettered
    at once), MailDeferredError for a 4xx reply (retried with backoff), and the OSError of
    an unreachable or vanished server as it is (nothing can be mailed until it is back, so
    the message is retried in place, like a store outage).

    Connections are kept open and reused (one per concurrent sender): a new connection per
    message cost a TCP handshake, EHLO and QUIT each time, the larger part of the service's
    CPU under load (benchmarks/profiles/notification-before.txt)."""

    def __init__(
        self, host: str, port: int, sender: str, timeout_s: float = SMTP_TIMEOUT_S
    ) -> None:
        self.sender = sender
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self._idle: queue.SimpleQueue[smtplib.SMTP] = queue.SimpleQueue()

    async def send(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._send_blocking, message)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError):
            raise  # the server, not this message
        # "from None": the smtplib errors are OSErrors, and a cause that is an OSError would
        # read as an outage of the service's own store (polysaga.persistence.is_unavailable).
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = MailRefusedError if min(codes) >= 500 else MailDeferredError
            raise error(f"recipients refused: {exc.recipients!r}") from None
        except smtplib.SMTPResponseException as exc:
            error = MailRefusedError if exc.smtp_code >= 500 else MailDeferredError
            raise error(f"{exc.smtp_code} {exc.smtp_error!r}") from None
        except smtplib.SMTPException as exc:
            raise MailDeferredError(repr(exc)) from None

    def _send_blocking(self, message: EmailMessage) -> None:
        try:
            smtp, reused = self._idle.get_nowait(), True
        except queue.Empty:
            smtp, reused = self._connect(), False
        try:
            refused = smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            _close(smtp)
            if not reused:
                raise
            # The server closed an idle connection: nothing was accepted, so send afresh.
            log.debug("SMTP connection went stale (%s); reconnecting", exc)
            smtp = self._connect()
            try:
                refused = smtp.send_message(message)
            except BaseException:
                _close(smtp)
                raise
        except BaseException:
            _close(smtp)
            raise
        self._idle.put(smtp)
        if refused:  # some recipients refused: not delivered to them, so not "sent"
            raise smtplib.SMTPRecipientsRefused(refused)

    def _connect(self) -> smtplib.SMTP:
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        log.debug("closing an SMTP connection failed", exc_info=True)

"""Wires the notification service: its migrations, its reactions bound to the SMTP mailer,
and its routes."""

from __future__ import annotations

from typing import Any

from notification import application
from notification.adapters import MIGRATIONS, PostgresNotificationStore, SmtpMailer
from notification.http import ROUTES
from notification.ports import Mailer
from polysaga.events.envelope import Envelope
from polysaga.events.payloads import Payload
from polysaga.messaging.consumer import EventHandler, emitting
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings


def event_handlers(mailer: Mailer) -> dict[str, EventHandler]:
    def bind(reaction: application.Reaction) -> EventHandler:
        async def react(
            event: Envelope[Any], store: PostgresNotificationStore
        ) -> list[Envelope[Payload]]:
            return await reaction(event, store, mailer)

        return emitting(react, PostgresNotificationStore)

    return {name: bind(reaction) for name, reaction in application.EVENT_HANDLERS.items()}


def build(settings: ServiceSettings) -> ServiceDefinition:
    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    return ServiceDefinition(
        name="notification",
        migrations=MIGRATIONS,
        store_adapter=PostgresNotificationStore,
        event_handlers=event_handlers(mailer),
        route_handlers=ROUTES,
        # One transaction per message: in a shared one, a sibling's failure would roll back
        # mails already handed to SMTP and send them again.
        batch_transactions=False,
    )

"""Settings carry credentials (database URLs, the NATS password); printing or logging the
settings must not show them."""

from __future__ import annotations

import logging

import pytest

from polysaga.settings import ServiceSettings


def test_settings_never_print_their_credentials(caplog: pytest.LogCaptureFixture) -> None:
    settings = ServiceSettings(
        database_url="postgresql+asyncpg://polysaga_order:pg-s3cret@127.0.0.1:5432/polysaga_order",
        mongo_url="mongodb://polysaga_catalog:mongo-s3cret@127.0.0.1:27017/x?authMechanism=PLAIN",
        nats_user="order",
        nats_password="nats-s3cret",
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    shown = f"{settings} {settings!r} {settings.model_dump()} {caplog.text}"
    for secret in ("pg-s3cret", "mongo-s3cret", "nats-s3cret"):
        assert secret not in shown
    assert settings.nats_password is not None
    assert settings.nats_password.get_secret_value() == "nats-s3cret"
    assert "pg-s3cret" in settings.database_url.get_secret_value()


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSAGA_NATS_USER", "inventory")
    monkeypatch.setenv("POLYSAGA_NATS_PASSWORD", "from-env")
    settings = ServiceSettings()
    assert settings.nats_user == "inventory"
    assert settings.nats_password is not None
    assert settings.nats_password.get_secret_value() == "from-env"

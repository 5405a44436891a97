"""Telling an outage of a service's store (wait and retry, spend no delivery) from a
failing statement (retry with backoff, then dead-letter)."""

from __future__ import annotations

from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from polysaga.mongo.client import is_unavailable

# What FerretDB answered while its PostgreSQL backend restarted, seen in a chaos run.
FERRETDB_BACKEND_DOWN = (
    "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:109"
    " postgresql.(*collection).Query] failed to connect to `user=postgres"
    " database=polysaga_ferretdb`: 127.0.0.1:59967 (127.0.0.1): server error: FATAL: the"
    " database system is not yet accepting connections (SQLSTATE 57P03)"
)


def test_a_lost_connection_is_an_outage() -> None:
    assert is_unavailable(AutoReconnect("connection reset"))


def test_ferretdb_with_its_backend_down_is_an_outage() -> None:
    assert is_unavailable(OperationFailure(FERRETDB_BACKEND_DOWN, code=1))


def test_a_failing_write_is_not_an_outage() -> None:
    assert not is_unavailable(DuplicateKeyError("E11000 duplicate key", code=11000))
    assert not is_unavailable(OperationFailure("invalid update operator", code=1))
    assert not is_unavailable(ValueError("a bug"))

"""Stream replication follows the setting: R1 on one server, R3 on the chart's NATS cluster."""

from __future__ import annotations

import pytest

from polysaga.messaging.connection import stream_configs
from polysaga.settings import ServiceSettings


def test_streams_are_single_copies_by_default() -> None:
    assert {c.num_replicas for c in stream_configs()} == {1}
    assert ServiceSettings().stream_replicas == 1


def test_a_cluster_keeps_every_stream_including_dead_letters_on_three_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLYSAGA_STREAM_REPLICAS", "3")
    replicas = ServiceSettings().stream_replicas
    configs = stream_configs(replicas)
    assert {c.num_replicas for c in configs} == {3}
    assert "DEADLETTER" in {c.name for c in configs}


def test_more_replicas_than_jetstream_allows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSAGA_STREAM_REPLICAS", "6")
    with pytest.raises(ValueError, match="stream_replicas"):
        ServiceSettings()

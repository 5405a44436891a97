"""The Jaeger configuration `polysaga up --with-jaeger` generates: every listener on its own
free loopback port (Jaeger's defaults are fixed ports on all interfaces), in-memory storage,
and the addresses the state file publishes."""

from __future__ import annotations

from pathlib import Path

import yaml

from polysaga_tools.servers import prepare_jaeger


def test_every_listener_is_on_loopback_at_the_ports_the_state_file_names(
    tmp_path: Path,
) -> None:
    server = prepare_jaeger(tmp_path)
    config = yaml.safe_load(server.config_file.read_text())
    query = config["extensions"]["jaeger_query"]
    otlp = config["receivers"]["otlp"]["protocols"]
    endpoints = {
        "query http": query["http"]["endpoint"],
        "query grpc": query["grpc"]["endpoint"],
        "otlp http": otlp["http"]["endpoint"],
        "otlp grpc": otlp["grpc"]["endpoint"],
    }
    assert all(e.startswith("127.0.0.1:") for e in endpoints.values()), endpoints
    assert len(set(endpoints.values())) == 4
    assert endpoints["query http"] == f"127.0.0.1:{server.query_http_port}"
    assert endpoints["otlp http"] == f"127.0.0.1:{server.otlp_http_port}"
    assert server.ui_url == f"http://127.0.0.1:{server.query_http_port}"
    assert server.api_url == f"{server.ui_url}/api"
    assert server.otlp_endpoint == f"http://127.0.0.1:{server.otlp_http_port}"
    # Jaeger's own metrics would otherwise listen on a fixed port (8888).
    assert config["service"]["telemetry"]["metrics"]["level"] == "none"
    backend = config["extensions"]["jaeger_storage"]["backends"][query["storage"]["traces"]]
    assert "memory" in backend
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]

"""The gateway's circuit breaker against a real upstream: the user service, run as its own
process on real PostgreSQL and NATS, is stopped (SIGSTOP: it accepts connections and never
answers, the case that costs every caller its full timeout). After the threshold of
failures the gateway answers in milliseconds with the user marked missing; a probe after
the open interval finds it still stopped and opens the circuit again; once the process
runs again (SIGCONT), the next probe closes the circuit and details are complete."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Response, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from gateway.bootstrap import build
from http_peers import serving
from polysaga.app import create_app
from polysaga.settings import ServiceSettings
from polysaga_tools.local_identity import LocalIdentity
from polysaga_tools.servers import NatsServer, free_port, wait_for_http_ok

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.8
THRESHOLD = 3
OPEN_S = 4.0  # long enough for ten rejected calls on a loaded machine
# An open circuit answers without asking the upstream: well under the timeout a stopped
# upstream costs (the rejected counter proves no call went out; this, that none waited).
FAST_S = TIMEOUT_S * 0.75


@pytest.fixture
def user_service(database_url: str, nats_server: NatsServer) -> Iterator[tuple[str, int]]:
    """The real user service as a process of its own; yields its URL and PID."""
    port = free_port()
    env = {
        **os.environ,
        "POLYSAGA_SERVICE_NAME": "user",
        "POLYSAGA_HTTP_PORT": str(port),
        "POLYSAGA_DATABASE_URL": database_url,
        "POLYSAGA_NATS_URL": nats_server.url,
    }
    log = tempfile.NamedTemporaryFile(prefix="polysaga-user-", suffix=".log")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "user"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http_ok(f"{url}/readyz", 60, "the user service")
        yield url, proc.pid
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        proc.terminate()
        proc.wait(20)
        log.close()


def state_of(upstream: str) -> str:
    for state in ("closed", "open", "half_open"):
        labels = {"upstream": upstream, "state": state}
        if REGISTRY.get_sample_value("polysaga_circuit_breaker_state", labels) == 1.0:
            return state
    raise AssertionError(f"no breaker state exported for {upstream}")


async def half_open(upstream: str) -> None:
    deadline = time.monotonic() + OPEN_S * 3
    while state_of(upstream) != "half_open":
        assert time.monotonic() < deadline, f"{upstream}'s circuit never went half-open"
        await asyncio.sleep(0.05)


async def test_a_stopped_upstream_opens_the_circuit_and_a_running_one_closes_it(
    user_service: tuple[str, int], tmp_path: Path
) -> None:
    user_url, user_pid = user_service
    async with httpx.AsyncClient(timeout=10) as http:
        registered = await http.post(
            f"{user_url}/users", json={"name": "Ada", "email": f"ada-{uuid.uuid4().hex}@x.org"}
        )
    user_id = registered.json()["user_id"]
    order_id = str(uuid.uuid4())
    order = {"order_id": order_id, "user_id": user_id, "items": [{"sku": "SKU-1"}]}

    @get("/orders/{order_id:str}", sync_to_thread=False)
    def peer_order(order_id: FromPath[str]) -> dict[str, Any]:
        return order

    @get("/products/{sku:str}", sync_to_thread=False)
    def peer_product(sku: FromPath[str]) -> Response[Any]:
        return Response({"sku": sku, "name": "Widget"})

    identity = LocalIdentity.new()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(identity.jwks()))
    with serving(Litestar([peer_order, peer_product])) as peer:
        settings = ServiceSettings(
            service_name="gateway",
            service_urls={"order": peer, "catalog": peer, "order-view": peer, "user": user_url},
            dependency_timeout_s=TIMEOUT_S,
            breaker_failure_threshold=THRESHOLD,
            breaker_open_s=OPEN_S,
            jwks_file=jwks,
            jwt_issuer=identity.issuer,
            jwt_audience=identity.audience,
        )
        token = identity.token("ops", ["operator"], ttl_s=300)
        async with AsyncTestClient(create_app(build(settings), settings)) as client:
            client.headers["Authorization"] = f"Bearer {token}"

            async def details() -> tuple[dict[str, Any], float]:
                started = time.monotonic()
                response = await client.get(f"/orders/{order_id}/details")
                elapsed = time.monotonic() - started
                assert response.status_code == 200, response.text
                return response.json(), elapsed

            healthy, _ = await details()
            assert healthy["complete"] and healthy["user"]["user_id"] == user_id
            assert state_of("user") == "closed"

            os.kill(user_pid, signal.SIGSTOP)
            for _ in range(THRESHOLD):  # each of these waits the whole timeout
                body, elapsed = await details()
                assert body["missing"] == ["user"] and elapsed >= TIMEOUT_S * 0.9
            assert state_of("user") == "open"
            rejected_before = REGISTRY.get_sample_value(
                "polysaga_circuit_breaker_rejected_total", {"upstream": "user"}
            )
            fast = []
            for _ in range(10):
                body, elapsed = await details()
                assert body["missing"] == ["user"] and body["products"]["SKU-1"] is not None
                fast.append(elapsed)
            assert max(fast) < FAST_S, fast
            rejected = REGISTRY.get_sample_value(
                "polysaga_circuit_breaker_rejected_total", {"upstream": "user"}
            )
            assert rejected == (rejected_before or 0) + 10

            # After the open interval one probe goes; the upstream is still stopped.
            await half_open("user")
            body, elapsed = await details()
            assert body["missing"] == ["user"] and elapsed >= TIMEOUT_S * 0.9
            assert state_of("user") == "open"
            body, elapsed = await details()
            assert body["missing"] == ["user"] and elapsed < FAST_S

            # The upstream runs again: the next probe closes the circuit.
            os.kill(user_pid, signal.SIGCONT)
            await half_open("user")
            recovered, _ = await details()
            assert recovered["complete"] and recovered["user"]["user_id"] == user_id
            assert state_of("user") == "closed"
            again, _ = await details()
            assert again["complete"]
    print(f"open circuit: {len(fast)} answers in {min(fast) * 1000:.0f}-{max(fast) * 1000:.0f} ms")

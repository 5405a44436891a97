"""The whole system, run exactly as ``polysaga up`` runs it (a subprocess with supervised
children), once for the end-to-end tests. Orders get a short deadline so the deadline path
is testable. The ``http`` client is the operator's (the stack's operator token for the
services, an operator JWT for the gateway); a test of refusal uses ``anonymous``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from polysaga_tools.local_identity import LocalIdentity
from polysaga_tools.stack_access import operator_headers, stack_client

ORDER_DEADLINE_S = 8.0


class Stack:
    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    def url(self, service: str) -> str:
        return str(self.state["services"][service])

    def token(self, user_id: str, *roles: str, ttl_s: float = 600) -> str:
        """A bearer JWT for the gateway, signed by the stack's own key."""
        return LocalIdentity.from_state(self.state["auth"]).token(user_id, roles, ttl_s=ttl_s)

    def bearer(self, user_id: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, *roles)}"}

    @property
    def operator_headers(self) -> dict[str, str]:
        return operator_headers(self.state)

    def pid(self, name: str) -> int:
        return int(self.state["processes"][name])

    def cli(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a ``polysaga`` command attached to this stack, as a user would."""
        return subprocess.run(
            [sys.executable, "-m", "polysaga_tools", *args, "--attach", str(self.state_file)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


@contextlib.contextmanager
def running_stack(prefix: str, *flags: str) -> Iterator[Stack]:
    """``polysaga up --no-view <flags>`` in a temporary directory, until the test session
    ends. Services log at DEBUG with every request in the access log, so a saga's lines
    can be found."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    state_file = root / "stack.json"
    env = {
        **os.environ,
        "POLYSAGA_ORDER_DEADLINE_S": str(ORDER_DEADLINE_S),
        "POLYSAGA_REDELIVERY_BACKOFF_S": "0.2",
        "POLYSAGA_REDELIVERY_BACKOFF_MAX_S": "2",
        "POLYSAGA_LOG_LEVEL": "DEBUG",
        "POLYSAGA_ACCESS_LOG_SAMPLE_RATIO": "1",
    }
    log = open(root / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polysaga_tools",
            "up",
            "--no-view",
            *flags,
            "--data-dir",
            str(root / "data"),
            "--state-file",
            str(state_file),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Generous: a loaded machine may also be running the other stack.
        deadline = time.monotonic() + 300
        while not (root / "up.log").read_text().count('"ready": true'):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"polysaga up did not start:\n{(root / 'up.log').read_text()}")
            time.sleep(0.2)
        yield Stack(state_file)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            log.close()
            if proc.returncode == 0:
                shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack("polysaga-e2e-", "--with-prometheus", "--with-jaeger") as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Authorised as the operator everywhere on the stack."""
    async with stack_client(stack.state, timeout=10) as client:
        yield client


@pytest.fixture
async def anonymous() -> AsyncIterator[httpx.AsyncClient]:
    """No credentials at all."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A prefix that keeps each test's SKUs and users apart on the shared stack."""
    return uuid.uuid4().hex[:8]

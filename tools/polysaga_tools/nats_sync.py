"""Switching a running local stack's NATS to ``sync_interval: always`` and back, for the
benchmark's durability phase: rewrite the server's config and stop it; its supervisor
restarts it on the same port and JetStream store, and the services reconnect."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from polysaga_tools.servers import ServerError


def with_sync_setting(config: str, *, sync_always: bool) -> str:
    """The nats-server config text with ``sync_interval: always`` in its jetstream block, or
    without any sync_interval (the server's default)."""
    lines = [line for line in config.splitlines() if "sync_interval" not in line]
    if sync_always:
        lines = [
            f"{line}\n  sync_interval: always" if line.strip().startswith("store_dir") else line
            for line in lines
        ]
    return "\n".join(lines) + "\n"


async def restart_nats(
    read_state: Callable[[], dict[str, Any]], *, sync_always: bool, timeout_s: float = 60
) -> None:
    state = read_state()
    config = Path(state["data_dir"]) / "nats" / "nats.conf"
    pid = state["processes"].get("nats")
    if not config.exists() or pid is None:
        raise ServerError("the durability phase needs the stack's own nats-server")
    config.write_text(with_sync_setting(config.read_text(), sync_always=sync_always))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while read_state()["processes"].get("nats") in (pid, None):
        if time.monotonic() > deadline:
            raise ServerError("nats-server was not restarted by its supervisor")
        await asyncio.sleep(0.2)
    await _wait_services_ready(dict(state["services"]), deadline)


async def _wait_services_ready(services: dict[str, str], deadline: float) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        pending = set(services)
        while pending:
            for service in list(pending):
                try:
                    response = await client.get(f"{services[service]}/readyz")
                    if response.status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise ServerError(f"services not ready after the NATS restart: {pending}")
            await asyncio.sleep(0.3)

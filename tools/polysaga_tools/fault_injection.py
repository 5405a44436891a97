"""Injecting the faults of ``polysaga_tools.faults`` into a running local stack: signals to the
supervised processes, ``pg_ctl stop`` for PostgreSQL, and re-published copies of events.

Every fault is undone by the system itself: the supervisor restarts what was killed or
stopped (as Kubernetes would), and a paused process is continued by the injector."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable

import nats

from polysaga.events.declaration import INVENTORY, ORDERS, PAYMENTS
from polysaga.events.envelope import NATS_MSG_ID
from polysaga_tools import faults
from polysaga_tools.servers import ServerError, find_postgres_binary, postgres_user
from polysaga_tools.stack import LocalStack, nats_admin_login

# Duplicates are copied from the saga's streams, where a duplicate effect would hurt most.
DUPLICATED_STREAMS = (ORDERS.stream, INVENTORY.stream, PAYMENTS.stream)
DUPLICATES_PER_FAULT = 30
_RESTART_TIMEOUT_S = 60.0


class FaultInjector:
    def __init__(
        self,
        stack: LocalStack,
        *,
        seed: int,
        pause_s: float,
        burst: Callable[[], Awaitable[int]],
    ) -> None:
        self._stack = stack
        self._seed = seed
        self._pause_s = pause_s
        self._burst = burst
        self.duplicates_published = 0

    async def inject(self, index: int, fault: faults.Fault) -> str:
        """Inject one fault and wait until what it broke is running again; say what it did."""
        rng = random.Random(f"{self._seed}:{index}")  # runtime choices, seeded per fault
        kind = fault.kind
        if kind == faults.KILL_SERVICE:
            return await self._kill(fault.target)
        if kind == faults.KILL_SERVICE_MID_BURST:
            placed = await self._burst()
            await asyncio.sleep(rng.uniform(0.02, 0.3))  # its events are being handled now
            return f"{await self._kill(fault.target)} after a burst of {placed} orders"
        if kind == faults.KILL_NATS:
            return await self._kill("nats")
        if kind == faults.RESTART_POSTGRES_FAST:
            return await self._restart_postgres("fast")
        if kind == faults.RESTART_POSTGRES_IMMEDIATE:
            return await self._restart_postgres("immediate")
        if kind == faults.PAUSE_FERRETDB:
            # One FerretDB per Mongo-backed service (each on its own role): stop them all.
            names = [n for n in self._stack.state()["processes"] if n.startswith("ferretdb-")]
            return "; ".join(await asyncio.gather(*(self._pause(n) for n in names)))
        if kind == faults.PAUSE_SERVICE:
            return await self._pause(fault.target)
        if kind == faults.DUPLICATE_DELIVERIES:
            return await self._duplicate(rng)
        raise ValueError(f"unknown fault kind {kind!r}")

    async def _running_pid(self, name: str) -> int:
        """The process's pid once it runs (it may still be restarting from an earlier fault)."""
        proc = self._stack.process(name)
        deadline = time.monotonic() + _RESTART_TIMEOUT_S
        while proc.pid is None:
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not come back within {_RESTART_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        return proc.pid

    async def _wait_restarted(self, name: str, old_pid: int) -> None:
        proc = self._stack.process(name)
        deadline = time.monotonic() + _RESTART_TIMEOUT_S
        while proc.pid in (None, old_pid):
            if time.monotonic() > deadline:
                raise ServerError(f"{name} was not restarted within {_RESTART_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)

    async def _kill(self, name: str) -> str:
        pid = await self._running_pid(name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await self._wait_restarted(name, pid)
        return f"SIGKILL {name} (pid {pid}), restarted"

    async def _restart_postgres(self, mode: str) -> str:
        pid = await self._running_pid("postgres")
        data_dir = self._stack.state()["postgres"]["data_dir"]
        stop = await asyncio.create_subprocess_exec(
            find_postgres_binary("pg_ctl"),
            "stop",
            "-D",
            data_dir,
            "-m",
            mode,
            "-w",
            "-t",
            "30",
            user=postgres_user(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await stop.communicate()
        if stop.returncode != 0:
            raise ServerError(f"pg_ctl stop -m {mode} failed: {stderr.decode().strip()}")
        await self._wait_restarted("postgres", pid)  # the supervisor starts it again
        return f"pg_ctl stop -m {mode} (pid {pid}), started again"

    async def _pause(self, name: str) -> str:
        pid = await self._running_pid(name)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(self._pause_s)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return f"SIGSTOP {name} (pid {pid}) for {self._pause_s:.1f} s, then SIGCONT"

    async def _duplicate(self, rng: random.Random) -> str:
        """Re-publish copies of already-published events. Each copy keeps the event's id
        (ce-id) but gets a new Nats-Msg-Id: JetStream stores it as a new message and
        delivers it again to every consumer, whose inbox must recognise the event."""
        state = self._stack.state()
        nc = await nats.connect(state["nats"], **nats_admin_login(state), max_reconnect_attempts=5)
        copied = 0
        try:
            js = nc.jetstream()
            for stream in DUPLICATED_STREAMS:
                last = (await js.stream_info(stream)).state.last_seq or 0
                if not last:
                    continue
                for seq in rng.sample(range(1, last + 1), min(last, DUPLICATES_PER_FAULT)):
                    message = await js.get_msg(stream, seq)
                    headers = {
                        **(message.headers or {}),
                        NATS_MSG_ID: f"chaos-duplicate-{uuid.uuid4()}",
                    }
                    await js.publish(message.subject or "", message.data or b"", headers=headers)
                    copied += 1
        finally:
            await nc.close()
        self.duplicates_published += copied
        return f"re-published {copied} events under new Nats-Msg-Ids"

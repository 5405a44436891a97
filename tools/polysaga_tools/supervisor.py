"""Supervised child processes: one that dies is restarted with exponential backoff, as
Kubernetes would restart a crashed container."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_BACKOFF_START_S = 0.25
_BACKOFF_MAX_S = 10.0
_HEALTHY_AFTER_S = 30.0  # a process that ran this long restarts with the shortest backoff


@dataclass
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    log_file: Path | None = None
    user: str | None = None
    stop_signal: int = signal.SIGTERM


class SupervisedProcess:
    def __init__(self, spec: ProcessSpec, on_change: Callable[[], None]) -> None:
        self.spec = spec
        self.restarts = 0
        self.state = "stopped"
        self._proc: asyncio.subprocess.Process | None = None
        self._on_change = on_change
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch())

    async def _spawn(self) -> None:
        # Opening a local log file does not block in any way that matters.
        out = (
            open(self.spec.log_file, "ab")  # noqa: SIM115, ASYNC230
            if self.spec.log_file
            else asyncio.subprocess.DEVNULL
        )
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                env={**os.environ, **self.spec.env},
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                user=self.spec.user,
                start_new_session=True,  # Ctrl-C in the terminal reaches only the supervisor
            )
        finally:
            if not isinstance(out, int):
                out.close()
        self.state = "running"
        self._on_change()

    async def _watch(self) -> None:
        backoff = _BACKOFF_START_S
        while True:
            assert self._proc is not None
            started = time.monotonic()
            code = await self._proc.wait()
            if self._stopping:
                return
            if time.monotonic() - started > _HEALTHY_AFTER_S:
                backoff = _BACKOFF_START_S
            self.state = f"exited {code}, restarting"
            self._on_change()
            log.warning("%s exited with %s; restarting in %.2f s", self.spec.name, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(_BACKOFF_MAX_S, backoff * 2)
            self.restarts += 1
            await self._spawn()

    async def stop(self, timeout_s: float = 15) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.spec.stop_signal)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("%s did not stop in %.0f s; killing it", self.spec.name, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self.state = "stopped"

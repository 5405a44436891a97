"""The order view's one writer: every consumer hands its fetched batch to this task and waits
for it, so the view's writes come from one place in the process (FerretDB v1 keeps a
document's updates atomic only when they do not overlap), and the events that arrived on
every stream meanwhile are applied together: one order's events from several streams become
one write."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence

from polysaga.events.envelope import Envelope

Apply = Callable[[Sequence[Envelope]], Awaitable[None]]


class CoalescingWriter:
    """Applies submitted batches one round at a time; a round takes every batch submitted
    while the previous one was being written."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self._queue: list[tuple[Sequence[Envelope], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, events: Sequence[Envelope]) -> None:
        """Returns once the events are applied; raises what applying them raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((events, done))
        self._wake.set()
        if self._task is None or self._task.done():
            # A context of its own: the writes must not join the submitter's trace.
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            round_, self._queue = self._queue, []
            if round_:
                await self._write(round_)

    async def _write(
        self, round_: Sequence[tuple[Sequence[Envelope], asyncio.Future[None]]]
    ) -> None:
        try:
            await self._apply([e for events, _ in round_ for e in events])
        except Exception as exc:
            if len(round_) == 1:
                _settle(round_[0][1], exc)
                return
            # Each batch again on its own, so a failure reaches only the batch that caused it.
            for events, done in round_:
                try:
                    await self._apply(events)
                except Exception as own:
                    _settle(done, own)
                else:
                    _settle(done, None)
            return
        for _, done in round_:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the submitter was cancelled meanwhile
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)

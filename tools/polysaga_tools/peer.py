"""The peers the benchmark compares the system with, on the stack's own PostgreSQL, each in a
scratch database of its own: the same saga as a DBOS Transact workflow in one process
(``dbos_peer``), and, for the event store alone, the Python ``eventsourcing`` library's
PostgreSQL application recorder (events table with notification ids, its own outbox of
sorts) against the order service's event store with the same number of concurrent writers."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg


@dataclass(frozen=True)
class PeerResult:
    eventsourcing_appends_per_s: float
    polysaga_appends_per_s: float

    @property
    def ratio(self) -> float:
        return self.polysaga_appends_per_s / self.eventsourcing_appends_per_s


def eventsourcing_appends_per_s(
    admin_dsn: str, database: str, duration_s: float, writers: int
) -> float:
    """One new aggregate's first event per insert_events call, ``writers`` threads (the
    recorder is synchronous), each on its own pooled connection."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(admin_dsn)
    datastore = PostgresDatastore(
        dbname=database,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or "",
        pool_size=writers,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="bench_events")
        recorder.create_table()
        state = json.dumps(
            {"user_id": "bench-user", "items": [{"sku": "bench-sku", "quantity": 1}]}
        ).encode()
        counts = [0] * writers
        deadline = time.monotonic() + duration_s

        def writer(slot: int) -> None:
            while time.monotonic() < deadline:
                recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "bench:OrderPlaced", state)])
                counts[slot] += 1

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.monotonic() - started)
    finally:
        datastore.close()


async def polysaga_appends_per_s(
    admin_dsn: str, database: str, duration_s: float, writers: int
) -> float:
    """The order service's own adapter, run by its own entry point in a child process (the
    shared package never imports a service)."""
    url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "order.append_throughput",
        f"{url}/{database}",
        "--seconds",
        str(duration_s),
        "--concurrency",
        str(writers),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, errors = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"order.append_throughput failed: {errors.decode()[-2000:]}")
    return float(json.loads(out)["appends_per_s"])


async def compare(
    admin_dsn: str, duration_s: float, writers: int = 8, rounds: int = 3
) -> PeerResult:
    """Both sides in alternating rounds (theirs, ours, theirs, …), each side's rate the mean
    over its rounds: on a machine whose load drifts, neither side gets only the quiet part."""
    theirs_db, ours_db = (f"polysaga_bench_{side}_{uuid.uuid4().hex[:8]}" for side in ("es", "ps"))
    admin = await asyncpg.connect(admin_dsn)
    theirs: list[float] = []
    ours: list[float] = []
    try:
        for database in (theirs_db, ours_db):
            await admin.execute(f'CREATE DATABASE "{database}"')
        for _ in range(rounds):
            theirs.append(
                await asyncio.to_thread(
                    eventsourcing_appends_per_s, admin_dsn, theirs_db, duration_s / rounds, writers
                )
            )
            ours.append(
                await polysaga_appends_per_s(admin_dsn, ours_db, duration_s / rounds, writers)
            )
    finally:
        for database in (theirs_db, ours_db):
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return PeerResult(sum(theirs) / rounds, sum(ours) / rounds)


async def dbos_saga(
    admin_dsn: str, *, closed_orders: int, concurrency: int, rate_per_s: float, seconds: float
) -> dict[str, Any]:
    """The DBOS peer's figures (see ``polysaga_tools.dbos_peer``): closed-loop sagas/s and the
    latency at ``rate_per_s``, run in a process of its own on a scratch database."""
    database = f"polysaga_bench_dbos_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "polysaga_tools.dbos_peer",
            f"{admin_dsn.rsplit('/', 1)[0]}/{database}",
            "--closed",
            str(closed_orders),
            "--concurrency",
            str(concurrency),
            "--rate",
            str(rate_per_s),
            "--seconds",
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, errors = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"the DBOS peer failed: {errors.decode()[-3000:]}")
        figures: dict[str, Any] = json.loads(out)
        return figures
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

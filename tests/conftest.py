"""Real servers for the tests, started by fixtures on free loopback ports in temporary
directories: nats-server (JetStream, file storage) and PostgreSQL. A server that cannot
start fails the test loudly; nothing is skipped."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings

from polysaga_tools.servers import (
    FerretDBServer,
    NatsServer,
    PostgresServer,
    SmtpServer,
    find_binary,
    postgres_user,
    prepare_ferretdb,
    prepare_nats,
    prepare_postgres,
    prepare_smtp,
    wait_for_port,
    wait_nats_ready,
)

# No per-example deadline: this machine's load makes timings noise (hypothesis's 200 ms
# failed a decoding property at a load average near 19); speed is `polysaga bench`'s to check.
settings.register_profile("polysaga", deadline=None)
settings.load_profile("polysaga")


def _scratch_dir(prefix: str) -> Path:
    # Under /tmp and world-traversable: PostgreSQL runs as the 'postgres' user when we are root.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def _running(
    argv: list[str], root: Path, port: int, what: str, user: str | None = None
) -> Iterator[None]:
    """A server process logging into root, waited for on its port, stopped and cleaned up
    afterwards (the log stays in root until then, for a failing test to show)."""
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(argv, user=user, stdout=log, stderr=log)
        try:
            wait_for_port(port, 30, what)
            yield
        finally:
            proc.terminate()
            proc.wait(20)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh nats-server per test, so streams and consumers never leak between tests."""
    root = _scratch_dir("polysaga-nats-")
    server = prepare_nats(root)
    proc = subprocess.Popen(server.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_nats_ready(server)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = _scratch_dir("polysaga-pg-")
    server = prepare_postgres(root, fsync=False)
    with _running(server.argv(), root, server.port, "PostgreSQL", user=postgres_user()):
        yield server


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    """A new, empty database per test; returns its SQLAlchemy URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    for _ in range(100):  # the server may still be starting
        try:
            conn = await asyncpg.connect(admin)
            break
        except (OSError, asyncpg.CannotConnectNowError):
            import asyncio

            await asyncio.sleep(0.1)
    else:
        raise RuntimeError("PostgreSQL did not accept connections")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return postgres_server.url(name)


@pytest.fixture(scope="session")
def ferretdb_server(postgres_server: PostgresServer) -> Iterator[FerretDBServer]:
    """A real MongoDB-wire server: FerretDB v1, keeping its data in the test PostgreSQL."""
    admin = f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    for _ in range(100):  # PostgreSQL may still be starting up
        created = subprocess.run(
            [find_binary("psql"), admin, "-qc", "CREATE DATABASE ferretdb"],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"could not create FerretDB's database: {created.stderr}")
    root = _scratch_dir("polysaga-ferretdb-")
    server = prepare_ferretdb(
        root, f"postgresql://postgres@127.0.0.1:{postgres_server.port}/ferretdb"
    )
    with _running(server.argv(), root, server.port, "FerretDB"):
        yield server


@pytest.fixture
def mongo_url(ferretdb_server: FerretDBServer) -> str:
    """A fresh database name per test (created on first write)."""
    return ferretdb_server.url(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) that stores what it receives in a Maildir."""
    root = _scratch_dir("polysaga-smtp-")
    server = prepare_smtp(root)
    proc = subprocess.Popen(server.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(server.port, 15, "SMTP")
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)

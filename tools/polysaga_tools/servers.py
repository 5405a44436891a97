"""Local servers for ``polysaga up`` and the tests: nats-server with JetStream file storage
and PostgreSQL initialised into a data directory, each on a free loopback port.

Binaries come from the virtual environment's bin directory (the bootstrap links them
there), then from PATH.
"""

from __future__ import annotations

import json
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx


class ServerError(RuntimeError):
    """A server could not be found, initialised or started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str:
    venv_bin = Path(sys.executable).parent
    candidate = venv_bin / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} not found in {venv_bin} or PATH; run scripts/bootstrap.sh")
    return found


def find_postgres_binary(name: str) -> str:
    """A PostgreSQL binary by its real path: run as the 'postgres' user when we are root, it
    may not be allowed through the clone's directories to the link in .venv/bin."""
    return str(Path(find_binary(name)).resolve())


def wait_for_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")


def wait_for_http_ok(url: str, timeout_s: float, what: str, *, interval_s: float = 0.1) -> None:
    """Poll ``url`` until it answers 200: a server's readiness endpoint."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    raise ServerError(f"{what} not ready within {timeout_s:.0f} s")


# --- NATS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NatsServer:
    port: int
    monitor_port: int
    store_dir: Path
    config_file: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [find_binary("nats-server"), "-c", str(self.config_file)]


@dataclass(frozen=True)
class NatsUser:
    password: str
    # A nats-server permissions block; None for an unrestricted (admin) user.
    permissions: Mapping[str, Any] | None = None


def prepare_nats(
    data_dir: Path, *, sync_always: bool = False, users: Mapping[str, NatsUser] | None = None
) -> NatsServer:
    """``users``: when given, the server admits only these users (and no anonymous client)."""
    store = data_dir / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    port, monitor = free_port(), free_port()
    config = data_dir / "nats.conf"
    sync = "\n  sync_interval: always" if sync_always else ""
    text = (
        f"listen: 127.0.0.1:{port}\n"
        f"http: 127.0.0.1:{monitor}\n"
        f'jetstream {{\n  store_dir: "{store}"{sync}\n}}\n'
    )
    if users is not None:
        entries: list[dict[str, Any]] = []
        for name, user in users.items():
            entry: dict[str, Any] = {"user": name, "password": user.password}
            if user.permissions is not None:
                entry["permissions"] = user.permissions
            entries.append(entry)
        # The configuration format accepts JSON; passwords are in it, so only we may read it.
        text += f"authorization: {json.dumps({'users': entries}, indent=2)}\n"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(text)
    return NatsServer(port, monitor, store, config)


def wait_nats_ready(server: NatsServer, timeout_s: float = 20) -> None:
    wait_for_http_ok(
        f"http://127.0.0.1:{server.monitor_port}/healthz?js-enabled-only=true",
        timeout_s,
        f"nats-server on port {server.port}",
        interval_s=0.05,
    )


# --- PostgreSQL ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    port: int
    data_dir: Path
    user: str = "postgres"
    fsync: bool = True
    password: str | None = None  # None: the server trusts every local connection (tests)

    def url(self, database: str) -> str:
        login = f"{self.user}:{quote(self.password, safe='')}" if self.password else self.user
        return f"postgresql+asyncpg://{login}@127.0.0.1:{self.port}/{database}"

    def argv(self) -> list[str]:
        return [
            find_postgres_binary("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            f"fsync={'on' if self.fsync else 'off'}",
            "-c",
            "shared_buffers=128MB",
        ]


def _run_as() -> str | None:
    """initdb and postgres refuse to run as root: run them as the 'postgres' user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServerError(
            "running as root but no 'postgres' user exists to run PostgreSQL"
        ) from exc
    return "postgres"


def postgres_user() -> str | None:
    return _run_as()


def prepare_postgres(
    data_root: Path, *, fsync: bool = True, superuser_password: str | None = None
) -> PostgresServer:
    """initdb into data_root/postgres unless it is already initialised. With a superuser
    password every connection must authenticate (SCRAM-SHA-256); without one, the server
    trusts every local connection (the tests' throw-away servers)."""
    data_dir = data_root / "postgres"
    run_as = _run_as()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            _make_reachable(data_dir, run_as)
        argv = [
            find_postgres_binary("initdb"),
            "-D",
            str(data_dir),
            "--username=postgres",
            "--encoding=UTF8",
            "--no-instructions",
        ]
        pwfile = data_root / "postgres-pwfile"
        if superuser_password is not None:
            pwfile.touch(mode=0o600)
            pwfile.write_text(superuser_password + "\n")
            if run_as is not None:
                entry = pwd.getpwnam(run_as)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            argv += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            argv.append("--auth=trust")
        try:
            result = subprocess.run(argv, user=run_as, capture_output=True, text=True, check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {result.stderr.strip()}")
    return PostgresServer(free_port(), data_dir, fsync=fsync, password=superuser_password)


def _make_reachable(data_dir: Path, owner: str) -> None:
    entry = pwd.getpwnam(owner)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(data_dir, 0o700)
    for parent in data_dir.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            if parent.stat().st_uid == os.geteuid():
                os.chmod(parent, mode | 0o011)
            else:
                raise ServerError(
                    f"{parent} is not traversable by {owner}; choose another data dir"
                )
        if parent == Path("/"):
            break


# --- FerretDB (MongoDB wire protocol, PostgreSQL backend) ------------------------------
# FerretDB v1 keeps its data in a PostgreSQL database of its own. Its SQLite backend was
# measured first and dropped: an update there costs time in proportion to the collection
# (28 ms per update_one at 3,000 documents against 4.7 ms on PostgreSQL), which a read model
# that grows by one document per order cannot afford.


@dataclass(frozen=True)
class FerretDBServer:
    port: int
    debug_port: int
    state_dir: Path
    postgresql_url: str

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """``user``/``password``: the PostgreSQL role FerretDB logs in as for this client."""
        login, auth = "", ""
        if user is not None and password is not None:
            login = f"{quote(user, safe='')}:{quote(password, safe='')}@"
            auth = "&authMechanism=PLAIN"  # FerretDB v1 hands these to PostgreSQL
        # FerretDB v1 applies an update as read-modify-write outside a transaction, so two
        # concurrent updates of one document can lose one (FerretDB issue 3040; measured: 8
        # of 100 concurrent $inc kept). One connection per client serialises a process's
        # commands and restores single-document atomicity; a real MongoDB needs no limit.
        return f"mongodb://{login}127.0.0.1:{self.port}/{database}?maxPoolSize=1{auth}"

    def argv(self) -> list[str]:
        return [
            find_binary("ferretdb"),
            "--handler=postgresql",
            f"--postgresql-url={self.postgresql_url}",
            f"--state-dir={self.state_dir}",
            f"--listen-addr=127.0.0.1:{self.port}",
            f"--debug-addr=127.0.0.1:{self.debug_port}",
            "--telemetry=disable",
            "--log-level=warn",
        ]


def prepare_ferretdb(
    data_root: Path, postgresql_url: str, *, name: str = "ferretdb"
) -> FerretDBServer:
    """``postgresql_url``: a libpq URL of an existing, empty-or-FerretDB-owned database. With
    no user in it, FerretDB logs in to PostgreSQL as each client's own user (authMechanism
    PLAIN), and an anonymous client gets nothing."""
    state_dir = data_root / name
    state_dir.mkdir(parents=True, exist_ok=True)
    return FerretDBServer(free_port(), free_port(), state_dir, postgresql_url)


# --- SMTP (a real local mail server that keeps what it receives) --------------------------


@dataclass(frozen=True)
class SmtpServer:
    port: int
    maildir: Path

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{self.port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(self.maildir),
        ]


def prepare_smtp(data_root: Path) -> SmtpServer:
    maildir = data_root / "maildir"
    data_root.mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(maildir, create=True)  # makes cur/, new/ and tmp/
    return SmtpServer(free_port(), maildir)


# --- Prometheus (Debian's package; scrapes every service's /metrics) ----------------------


def observability_dir() -> Path:
    """The repository's observability/ directory (the package is installed editable)."""
    path = Path(__file__).resolve().parents[2] / "observability"
    if not (path / "prometheus" / "polysaga-rules.yml").is_file():
        raise ServerError(
            f"{path / 'prometheus' / 'polysaga-rules.yml'} not found; --with-prometheus needs"
            " the repository checkout (an editable install of polysaga)"
        )
    return path


@dataclass(frozen=True)
class PrometheusServer:
    port: int
    data_dir: Path
    config_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            find_binary("prometheus"),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]


def prepare_prometheus(data_root: Path, targets: dict[str, str]) -> PrometheusServer:
    """A configuration that scrapes each service (job = service name, target = host:port)
    every second and loads the repository's alert rules."""
    data_dir = data_root / "prometheus"
    (data_dir / "tsdb").mkdir(parents=True, exist_ok=True)
    rules = observability_dir() / "prometheus" / "polysaga-rules.yml"
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        "rule_files:",
        f'  - "{rules}"',
        "scrape_configs:",
    ]
    for service, url in targets.items():
        host_port = url.split("://", 1)[-1].rstrip("/")
        lines += [
            f'  - job_name: "{service}"',
            "    metrics_path: /metrics",
            "    static_configs:",
            f'      - targets: ["{host_port}"]',
        ]
    config = data_dir / "prometheus.yml"
    config.write_text("\n".join(lines) + "\n")
    return PrometheusServer(free_port(), data_dir, config)


def wait_prometheus_ready(server: PrometheusServer, timeout_s: float = 30) -> None:
    wait_for_http_ok(f"{server.url}/-/ready", timeout_s, f"Prometheus on port {server.port}")


# --- Jaeger v2 (built from its Go module; OTLP in, traces kept in memory, query API + UI) ---


@dataclass(frozen=True)
class JaegerServer:
    otlp_http_port: int
    otlp_grpc_port: int
    query_http_port: int
    query_grpc_port: int
    config_file: Path

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.query_http_port}"

    @property
    def api_url(self) -> str:
        """The base of Jaeger's HTTP query API (``/traces``, ``/services``, …)."""
        return f"{self.ui_url}/api"

    @property
    def otlp_endpoint(self) -> str:
        """OTLP over HTTP; exporters append ``/v1/traces``."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    def argv(self) -> list[str]:
        return [find_binary("jaeger"), f"--config=file:{self.config_file}"]


def prepare_jaeger(data_root: Path) -> JaegerServer:
    """A configuration with every listener on a free loopback port (the built-in defaults
    are fixed ports on all interfaces) and Jaeger's own metrics off."""
    data_dir = data_root / "jaeger"
    data_dir.mkdir(parents=True, exist_ok=True)
    otlp_http, otlp_grpc, query_http, query_grpc = (free_port() for _ in range(4))
    config = data_dir / "jaeger.yaml"
    config.write_text(
        f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: 127.0.0.1:{query_http}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_http}
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""
    )
    return JaegerServer(otlp_http, otlp_grpc, query_http, query_grpc, config)


def wait_jaeger_ready(server: JaegerServer, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    wait_for_http_ok(
        f"{server.api_url}/services", timeout_s, f"Jaeger on port {server.query_http_port}"
    )
    # The query API can answer before the OTLP receiver listens.
    wait_for_port(server.otlp_http_port, max(deadline - time.monotonic(), 1), "Jaeger")

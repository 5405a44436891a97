"""The whole system on one machine: NATS, PostgreSQL and every service as supervised
processes on free loopback ports, described by a JSON state file that stays current."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

from polysaga.events import declaration
from polysaga.messaging.permissions import service_permissions
from polysaga_tools.databases import close_maintenance_databases, provision_owned_database
from polysaga_tools.local_identity import LocalIdentity
from polysaga_tools.servers import (
    FerretDBServer,
    JaegerServer,
    NatsUser,
    PostgresServer,
    PrometheusServer,
    ServerError,
    SmtpServer,
    free_port,
    postgres_user,
    prepare_ferretdb,
    prepare_jaeger,
    prepare_nats,
    prepare_postgres,
    prepare_prometheus,
    prepare_smtp,
    wait_for_port,
    wait_jaeger_ready,
    wait_nats_ready,
    wait_prometheus_ready,
)
from polysaga_tools.supervisor import ProcessSpec, SupervisedProcess

# Every service, the store it owns, in start order (the gateway calls the others).
SERVICE_STORES: dict[str, str | None] = {
    "order": "postgres",
    "inventory": "postgres",
    "payment": "postgres",
    "user": "postgres",
    "notification": "postgres",
    "catalog": "mongo",
    "order-view": "mongo",
    "gateway": None,
}
APP_SERVICES = tuple(SERVICE_STORES)
GATEWAY_DEPENDENCIES = ("order", "user", "catalog", "order-view")
DEFAULT_STATE_FILE = Path(".polysaga/stack.json")
NATS_ADMIN_USER = "polysaga-admin"  # the CLI's own user (check, demo); services get their own


def database_name(service: str) -> str:
    return f"polysaga_{service.replace('-', '_')}"


def module_name(service: str) -> str:
    return service.replace("-", "_")


def instance_names(service: str, replicas: int) -> list[str]:
    """Process names of a service's instances: the first is the service's own name."""
    return [service, *(f"{service}#{i}" for i in range(2, replicas + 1))]


class LocalStack:
    def __init__(
        self,
        data_dir: Path,
        state_file: Path,
        *,
        services: tuple[str, ...] = APP_SERVICES,
        postgres_url: str | None = None,
        nats_url: str | None = None,
        mongo_url: str | None = None,
        fsync: bool = True,
        nats_sync_always: bool = False,
        with_prometheus: bool = False,
        replicas: Mapping[str, int] | None = None,
        service_env: Mapping[str, str] | None = None,
        with_jaeger: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.state_file = state_file
        self.services = services
        # Instances of each service (default one); every instance is a supervised process.
        self.instances = {s: instance_names(s, (replicas or {}).get(s, 1)) for s in services}
        self._service_env = dict(service_env or {})
        self._external_postgres = postgres_url
        self._external_nats = nats_url
        self._external_mongo = mongo_url
        self._smtp: SmtpServer | None = None
        self._fsync = fsync
        self._nats_sync_always = nats_sync_always
        self._with_prometheus = with_prometheus
        self._prometheus: PrometheusServer | None = None
        self._with_jaeger = with_jaeger
        self._jaeger: JaegerServer | None = None
        self._procs: dict[str, SupervisedProcess] = {}
        self._service_ports: dict[str, int] = {}
        self._nats_url = nats_url or ""
        self._postgres: PostgresServer | None = None
        self._ferretdbs: dict[str, FerretDBServer] = {}
        # Each service's NATS and database password, new on every start.
        self._nats_passwords: dict[str, str] = {}
        self._db_passwords = {s: secrets.token_urlsafe(24) for s in services}
        # The operator token and the signing key of the gateway's tokens, new on every start.
        self.identity = LocalIdentity.new()
        self._started_at = datetime.now(UTC).isoformat()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, ready_timeout_s: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._write_jwks()
        try:
            await self._start_nats()
            await self._start_postgres()
            await self._create_databases()
            await self._start_ferretdb()
            await self._start_smtp()
            await self._start_jaeger()  # before the services, which export to it
            for service in self.services:
                for instance in self.instances[service]:
                    await self._start_service(service, instance)
            await self._wait_services_ready(ready_timeout_s)
            await self._start_prometheus()
        except BaseException:
            await self.stop()
            raise
        self._write_state()

    async def stop(self) -> None:
        servers = ["smtp", *(f"ferretdb-{s}" for s in self._ferretdbs), "postgres", "nats"]
        processes = [i for s in reversed(self.services) for i in reversed(self.instances[s])]
        # Jaeger after the services, so the spans they flush at shutdown still arrive.
        for name in ["prometheus", *processes, "jaeger", *servers]:
            proc = self._procs.get(name)
            if proc is not None:
                await proc.stop()
        self._write_state()

    def process(self, name: str) -> SupervisedProcess:
        return self._procs[name]

    # --- servers ------------------------------------------------------------------------

    async def _start_nats(self) -> None:
        if self._external_nats:
            return
        self._nats_passwords = {
            user: secrets.token_urlsafe(24) for user in (*self._nats_services(), NATS_ADMIN_USER)
        }
        users = {
            user: NatsUser(
                password,
                None if user == NATS_ADMIN_USER else service_permissions(user),
            )
            for user, password in self._nats_passwords.items()
        }
        server = prepare_nats(
            self.data_dir / "nats", sync_always=self._nats_sync_always, users=users
        )
        self._nats_url = server.url
        await self._supervise(ProcessSpec("nats", server.argv(), log_file=self._log("nats")))
        await asyncio.to_thread(wait_nats_ready, server)

    async def _start_postgres(self) -> None:
        if self._external_postgres:
            return
        server = await asyncio.to_thread(
            prepare_postgres,
            self.data_dir,
            fsync=self._fsync,
            superuser_password=_superuser_password(self.data_dir),
        )
        self._postgres = server
        log_file = self._log("postgres")
        user = postgres_user()
        if user is not None:
            log_file.touch()
            os.chown(log_file, *_uid_gid(user))
        await self._supervise(
            ProcessSpec(
                "postgres", server.argv(), log_file=log_file, user=user, stop_signal=signal.SIGINT
            )  # fast shutdown
        )
        await _wait_postgres(self._admin_dsn(), timeout_s=30)

    def _admin_dsn(self) -> str:
        if self._external_postgres:
            return _with_database(self._external_postgres, None)
        assert self._postgres is not None
        return _with_database(self._postgres.url("postgres"), None)

    def database_url(self, service: str) -> str:
        """The service's own database, as its own role."""
        name = database_name(service)
        parts = urlsplit(_with_database(self._admin_dsn(), name))
        host = parts.netloc.rsplit("@", 1)[-1]
        login = f"{quote(name, safe='')}:{quote(self._db_passwords[service], safe='')}"
        dsn = urlunsplit(parts._replace(netloc=f"{login}@{host}"))
        return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def _start_ferretdb(self) -> None:
        """One FerretDB per Mongo-backed service, on that service's own PostgreSQL database:
        FerretDB v1 has no access control of its own, so PostgreSQL's is the one that holds.
        No user in FerretDB's URL: it logs in as the client's user, so an anonymous client
        (or another service's user) is refused by PostgreSQL."""
        if self._external_mongo:
            return
        for service in self._mongo_services():
            parts = urlsplit(_with_database(self._admin_dsn(), database_name(service)))
            pg_url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
            name = f"ferretdb-{service}"
            server = prepare_ferretdb(self.data_dir, pg_url, name=name)
            self._ferretdbs[service] = server
            await self._supervise(ProcessSpec(name, server.argv(), log_file=self._log(name)))
            await asyncio.to_thread(wait_for_port, server.port, 30, "FerretDB")

    async def _start_smtp(self) -> None:
        if "notification" not in self.services:
            return
        server = prepare_smtp(self.data_dir)
        self._smtp = server
        await self._supervise(ProcessSpec("smtp", server.argv(), log_file=self._log("smtp")))
        await asyncio.to_thread(wait_for_port, server.port, 15, "SMTP")

    async def _start_prometheus(self) -> None:
        if not self._with_prometheus:
            return
        server = prepare_prometheus(self.data_dir, {s: self.service_url(s) for s in self.services})
        self._prometheus = server
        await self._supervise(
            ProcessSpec("prometheus", server.argv(), log_file=self._log("prometheus"))
        )
        await asyncio.to_thread(wait_prometheus_ready, server)

    async def _start_jaeger(self) -> None:
        if not self._with_jaeger:
            return
        server = prepare_jaeger(self.data_dir)
        self._jaeger = server
        await self._supervise(ProcessSpec("jaeger", server.argv(), log_file=self._log("jaeger")))
        await asyncio.to_thread(wait_jaeger_ready, server)

    def _mongo_services(self) -> list[str]:
        return [s for s in self.services if SERVICE_STORES.get(s) == "mongo"]

    def _postgres_services(self) -> list[str]:
        return [s for s in self.services if SERVICE_STORES.get(s) == "postgres"]

    def mongo_url(self, service: str) -> str:
        if self._external_mongo:
            parts = urlsplit(self._external_mongo)
            return urlunsplit(parts._replace(path=f"/{database_name(service)}"))
        name = database_name(service)
        return self._ferretdbs[service].url(name, name, self._db_passwords[service])

    def _nats_services(self) -> list[str]:
        return sorted(declaration.services() & set(self.services))

    async def _create_databases(self) -> None:
        """A role and a database it owns per service; Mongo-backed services' FerretDB keeps
        their data in theirs. Not for an external MongoDB: its users are its own business."""
        owners = self._postgres_services()
        if not self._external_mongo:
            owners += self._mongo_services()
        if self._postgres is not None:  # an external server's defaults are its owner's call
            await close_maintenance_databases(self._admin_dsn())
        for service in owners:
            await provision_owned_database(
                self._admin_dsn(), database_name(service), self._db_passwords[service]
            )

    # --- services -----------------------------------------------------------------------

    async def _start_service(self, service: str, instance: str) -> None:
        for names in self.instances.values():  # every port is known before anyone needs it
            for name in names:
                self._service_ports.setdefault(name, free_port())
        env = {
            **self._service_env,
            "POLYSAGA_SERVICE_NAME": service,
            "POLYSAGA_HTTP_HOST": "127.0.0.1",
            "POLYSAGA_HTTP_PORT": str(self._service_ports[instance]),
            "POLYSAGA_NATS_URL": self._nats_url,
            "POLYSAGA_OPERATOR_TOKEN": self.identity.operator_token,
        }
        if service in self._nats_passwords:
            env["POLYSAGA_NATS_USER"] = service
            env["POLYSAGA_NATS_PASSWORD"] = self._nats_passwords[service]
        store = SERVICE_STORES.get(service)
        if store == "postgres":
            env["POLYSAGA_DATABASE_URL"] = self.database_url(service)
        elif store == "mongo":
            env["POLYSAGA_MONGO_URL"] = self.mongo_url(service)
        if self._jaeger is not None:
            env["POLYSAGA_OTLP_ENDPOINT"] = self._jaeger.otlp_endpoint
        if service == "gateway":
            env["POLYSAGA_SERVICE_URLS"] = json.dumps(
                {d: self.service_url(d) for d in GATEWAY_DEPENDENCIES if d in self.services}
            )
            env["POLYSAGA_JWKS_FILE"] = str(self.jwks_file)
            env["POLYSAGA_JWT_ISSUER"] = self.identity.issuer
            env["POLYSAGA_JWT_AUDIENCE"] = self.identity.audience
        if service == "notification" and self._smtp is not None:
            env["POLYSAGA_SMTP_HOST"] = "127.0.0.1"
            env["POLYSAGA_SMTP_PORT"] = str(self._smtp.port)
        argv = [sys.executable, "-m", module_name(service)]
        await self._supervise(ProcessSpec(instance, argv, env=env, log_file=self._log(instance)))

    def service_url(self, instance: str) -> str:
        """The URL of a service (its first instance) or of one named instance."""
        return f"http://127.0.0.1:{self._service_ports[instance]}"

    async def _wait_services_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {i for names in self.instances.values() for i in names}
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for service in list(pending):
                    try:
                        response = await client.get(f"{self.service_url(service)}/readyz")
                        if response.status_code == 200:
                            pending.discard(service)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise ServerError(
                        f"services not ready within {timeout_s:.0f} s: {sorted(pending)};"
                        f" see {self.data_dir / 'logs'}"
                    )
                if pending:
                    await asyncio.sleep(0.2)

    async def _supervise(self, spec: ProcessSpec) -> None:
        proc = SupervisedProcess(spec, on_change=self._write_state)
        self._procs[spec.name] = proc
        await proc.start()

    @property
    def jwks_file(self) -> Path:
        return self.data_dir / "auth" / "jwks.json"

    def _write_jwks(self) -> None:
        """The public keys only: what an identity provider publishes at its jwks_uri."""
        self.jwks_file.parent.mkdir(exist_ok=True)
        self.jwks_file.write_text(json.dumps(self.identity.jwks(), indent=2))

    def _log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    # --- state file ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        postgres: dict[str, Any] = {
            "databases": {s: self.database_url(s) for s in self._postgres_services()}
            if (self._postgres or self._external_postgres)
            else {},
        }
        if self._postgres is not None:
            postgres.update(
                {
                    "host": "127.0.0.1",
                    "port": self._postgres.port,
                    "user": "postgres",
                    "data_dir": str(self._postgres.data_dir),
                }
            )
        return {
            "started_at": self._started_at,
            "data_dir": str(self.data_dir),
            "services": {s: self.service_url(s) for s in self.services if s in self._service_ports},
            "instances": {
                s: [self.service_url(i) for i in names]
                for s, names in self.instances.items()
                if s in self._service_ports
            },
            "processes": {name: proc.pid for name, proc in self._procs.items()},
            "restarts": {name: proc.restarts for name, proc in self._procs.items()},
            "nats": self._nats_url,
            "postgres": postgres,
            "mongo": {
                s: self.mongo_url(s)
                for s in self._mongo_services()
                if self._external_mongo or s in self._ferretdbs
            },
            "ferretdb": {s: f"mongodb://127.0.0.1:{f.port}" for s, f in self._ferretdbs.items()},
            "nats_users": {
                user: {"user": user, "password": password}
                for user, password in self._nats_passwords.items()
                if user != NATS_ADMIN_USER
            },
            "nats_admin": {
                "user": NATS_ADMIN_USER,
                "password": self._nats_passwords[NATS_ADMIN_USER],
            }
            if self._nats_passwords
            else None,
            "auth": {**self.identity.state(), "jwks_file": str(self.jwks_file)},
            "prometheus": self._prometheus.url if self._prometheus else None,
            "jaeger": {
                "ui": self._jaeger.ui_url,
                "api": self._jaeger.api_url,
                "otlp": self._jaeger.otlp_endpoint,
            }
            if self._jaeger
            else None,
            "smtp": {
                "host": "127.0.0.1",
                "port": self._smtp.port,
                "maildir": str(self._smtp.maildir),
            }
            if self._smtp
            else None,
        }

    def _write_state(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        # It holds credentials: private from the moment it exists, not only once written.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)  # an older tmp file may have had wider rights
            out.write(json.dumps(self.state(), indent=2))
        tmp.replace(self.state_file)


def nats_admin_login(state: dict[str, Any]) -> dict[str, str]:
    """``user``/``password`` for ``nats.connect`` as the stack's admin ({} if NATS has no
    users, e.g. an external server)."""
    admin = state.get("nats_admin")
    return {"user": admin["user"], "password": admin["password"]} if admin else {}


def postgres_admin_dsn(state: dict[str, Any]) -> str:
    """A superuser DSN for the stack's own PostgreSQL (the bench's scratch databases); an
    external server's admin is not in the state file, so that is refused clearly."""
    postgres = state["postgres"]
    if "port" not in postgres:
        raise ServerError("this needs the stack's own PostgreSQL (started without --postgres-url)")
    password = (Path(state["data_dir"]) / "postgres-superuser-password").read_text().strip()
    login = f"{quote(postgres['user'], safe='')}:{quote(password, safe='')}"
    return f"postgresql://{login}@{postgres['host']}:{postgres['port']}/postgres"


def load_state(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ServerError(f"no state file at {path}; is `polysaga up` running?") from exc
    except json.JSONDecodeError as exc:
        raise ServerError(f"{path} is not a polysaga state file: {exc}") from exc
    if "services" not in data or "nats" not in data:
        raise ServerError(f"{path} is not a polysaga state file")
    return data


def _superuser_password(data_dir: Path) -> str:
    """The local PostgreSQL superuser's password: made with the data directory, kept in it
    (mode 0600), since the server keeps it as long as its data."""
    path = data_dir / "postgres-superuser-password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _with_database(dsn: str, database: str | None) -> str:
    parts = urlsplit(dsn.replace("postgresql+asyncpg://", "postgresql://", 1))
    return urlunsplit(parts._replace(path=f"/{database or 'postgres'}"))


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


async def _wait_postgres(dsn: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL not ready within {timeout_s:.0f} s: {exc}") from exc
            await asyncio.sleep(0.1)

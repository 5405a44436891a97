"""What differs between the database engines in dedicated mode: image, port, environment,
data path, probes, and the connection URI format the services read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from polysaga_operator.spec import Engine

# PostgreSQL keeps its data in a subdirectory, so the volume's lost+found is no obstacle.
_PGDATA = "/var/lib/postgresql/data/pgdata"


@dataclass(frozen=True)
class EngineProfile:
    image: str
    port: int
    data_path: str
    # The uid/gid the official image's database user has: the pod runs as it, never as root.
    uid: int
    # The environment variable (and Secret key) the services read their connection URI from.
    uri_key: str
    # Directories the engine writes outside its data volume (emptyDirs, the root is read-only).
    scratch_paths: tuple[str, ...]

    def image_ref(self, version: str) -> str:
        return f"{self.image}:{version}"


PROFILES: dict[Engine, EngineProfile] = {
    Engine.POSTGRESQL: EngineProfile(
        image="docker.io/library/postgres",
        port=5432,
        data_path="/var/lib/postgresql/data",
        uid=999,
        uri_key="POLYSAGA_DATABASE_URL",
        scratch_paths=("/var/run/postgresql", "/tmp"),
    ),
    Engine.MONGODB: EngineProfile(
        image="docker.io/library/mongo",
        port=27017,
        data_path="/data/db",
        uid=999,
        uri_key="POLYSAGA_MONGO_URL",
        scratch_paths=("/data/configdb", "/tmp"),
    ),
    # The data is the PostgreSQL container's; FerretDB itself keeps only a state directory.
    Engine.FERRETDB: EngineProfile(
        image="ghcr.io/ferretdb/ferretdb",
        port=27017,
        data_path="/var/lib/postgresql/data",
        uid=999,
        uri_key="POLYSAGA_MONGO_URL",
        scratch_paths=("/var/run/postgresql", "/tmp", "/state"),
    ),
}

# The PostgreSQL inside a ferretdb pod: only FerretDB, on the pod's loopback, talks to it.
FERRETDB_BACKEND_PORT = 5432


@dataclass(frozen=True)
class EngineImages:
    """Where each engine's image comes from: the public repositories unless overridden (a
    local registry's copies), and the PostgreSQL tag a ferretdb pod keeps its data in."""

    repositories: Mapping[str, str] = field(default_factory=dict)
    ferretdb_postgresql_version: str = "16"

    def ref(self, engine: Engine, version: str) -> str:
        return f"{self.repositories.get(engine.value, PROFILES[engine].image)}:{version}"

    def ferretdb_backend(self) -> str:
        return self.ref(Engine.POSTGRESQL, self.ferretdb_postgresql_version)


def connection_uri(
    engine: Engine, *, user: str, password: str, host: str, port: int, database: str
) -> str:
    """The URI in the form the services' settings expect (SQLAlchemy's asyncpg dialect for
    PostgreSQL; a plain MongoDB URI authenticating against the admin database)."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if engine is Engine.POSTGRESQL:
        return f"postgresql+asyncpg://{credentials}@{host}:{port}/{database}"
    if engine is Engine.FERRETDB:
        # FerretDB v1 hands PLAIN credentials to PostgreSQL, and loses concurrent updates of
        # one document: one connection per client serialises a process's writes.
        return f"mongodb://{credentials}@{host}:{port}/{database}?authMechanism=PLAIN&maxPoolSize=1"
    return f"mongodb://{credentials}@{host}:{port}/{database}?authSource=admin"


def container_env(engine: Engine, secret_name: str, user: str, database: str) -> list[Any]:
    """The official images' first-start settings; the password comes from the Secret."""

    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}

    if engine in (Engine.POSTGRESQL, Engine.FERRETDB):
        return [
            {"name": "POSTGRES_USER", "value": user},
            {"name": "POSTGRES_DB", "value": database},
            from_secret("POSTGRES_PASSWORD", "password"),
            {"name": "PGDATA", "value": _PGDATA},
        ]
    return [
        {"name": "MONGO_INITDB_ROOT_USERNAME", "value": user},
        {"name": "MONGO_INITDB_DATABASE", "value": database},
        from_secret("MONGO_INITDB_ROOT_PASSWORD", "password"),
    ]


def ferretdb_env(database: str) -> list[Any]:
    """FerretDB's settings (its FERRETDB_* variables, so any build of v1 reads them): no user in
    the backend URL, so each client logs in to PostgreSQL as itself."""
    return [
        {"name": "FERRETDB_HANDLER", "value": "postgresql"},
        {
            "name": "FERRETDB_POSTGRESQL_URL",
            "value": f"postgres://127.0.0.1:{FERRETDB_BACKEND_PORT}/{database}",
        },
        {"name": "FERRETDB_LISTEN_ADDR", "value": f":{PROFILES[Engine.FERRETDB].port}"},
        {"name": "FERRETDB_STATE_DIR", "value": "/state"},
        {"name": "FERRETDB_TELEMETRY", "value": "disable"},
        {"name": "FERRETDB_LOG_LEVEL", "value": "warn"},
    ]


def probes(engine: Engine, user: str, database: str) -> dict[str, Any]:
    """Readiness asks the engine itself; liveness only needs the port to answer. A ferretdb
    pod's PostgreSQL gets these of engine postgresql, its FerretDB container a TCP check."""
    port = PROFILES[engine].port
    if engine is Engine.FERRETDB:
        return {
            "startupProbe": {
                "tcpSocket": {"port": port},
                "periodSeconds": 2,
                "failureThreshold": 150,
            },
            "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5},
            "livenessProbe": {
                "tcpSocket": {"port": port},
                "periodSeconds": 20,
                "failureThreshold": 6,
            },
        }
    if engine is Engine.POSTGRESQL:
        ready = ["pg_isready", "--host=127.0.0.1", f"--username={user}", f"--dbname={database}"]
    else:
        ready = ["mongosh", "--quiet", "--norc", "--eval", "db.adminCommand('ping').ok"]
    return {
        "startupProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "readinessProbe": {
            "exec": {"command": ready},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        },
        "livenessProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }

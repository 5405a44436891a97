"""What differs between the database engines in dedicated mode: image, port, environment,
data path, probes, and the connection URI format the services read."""

from __future__ import annotations

from dataclasses import dataclass
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
}


def connection_uri(
    engine: Engine, *, user: str, password: str, host: str, port: int, database: str
) -> str:
    """The URI in the form the services' settings expect (SQLAlchemy's asyncpg dialect for
    PostgreSQL; a plain MongoDB URI authenticating against the admin database)."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if engine is Engine.POSTGRESQL:
        return f"postgresql+asyncpg://{credentials}@{host}:{port}/{database}"
    return f"mongodb://{credentials}@{host}:{port}/{database}?authSource=admin"


def container_env(engine: Engine, secret_name: str, user: str, database: str) -> list[Any]:
    """The official images' first-start settings; the password comes from the Secret."""

    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}

    if engine is Engine.POSTGRESQL:
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


def probes(engine: Engine, user: str, database: str) -> dict[str, Any]:
    """Readiness asks the engine itself; liveness only needs the port to answer."""
    port = PROFILES[engine].port
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

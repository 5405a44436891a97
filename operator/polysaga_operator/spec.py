"""A ServiceDatabase's spec as a typed value. The CRD schema has already validated and
defaulted it; this only gives it names and types."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

GROUP = "polysaga.io"
VERSION = "v1alpha1"
PLURAL = "servicedatabases"


class Engine(StrEnum):
    POSTGRESQL = "postgresql"
    MONGODB = "mongodb"
    # The MongoDB wire protocol from FerretDB v1 on a PostgreSQL of the same pod: for clusters
    # that cannot run MongoDB (the local cluster builds no MongoDB image).
    FERRETDB = "ferretdb"


class Mode(StrEnum):
    DEDICATED = "dedicated"
    SHARED = "shared"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class InvalidSpec(ValueError):
    """The resource cannot be provisioned as written; retrying will not help."""


class _Camel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Storage(_Camel):
    size: str = "1Gi"
    storage_class_name: str | None = Field(default=None, alias="storageClassName")


class SecretRef(_Camel):
    name: str
    key: str = "uri"


class SharedServer(_Camel):
    admin_secret_ref: SecretRef = Field(alias="adminSecretRef")


class DatabaseSpec(_Camel):
    service: str
    engine: Engine
    version: str
    storage: Storage = Storage()
    mode: Mode = Mode.DEDICATED
    shared_server: SharedServer | None = Field(default=None, alias="sharedServer")
    deletion_policy: DeletionPolicy = Field(default=DeletionPolicy.RETAIN, alias="deletionPolicy")


def parse_spec(spec: Mapping[str, Any]) -> DatabaseSpec:
    try:
        parsed = DatabaseSpec.model_validate(dict(spec))
    except ValidationError as error:
        raise InvalidSpec(f"invalid spec: {error}") from error
    if parsed.mode is Mode.SHARED and parsed.shared_server is None:
        raise InvalidSpec("mode shared requires spec.sharedServer.adminSecretRef")
    if parsed.mode is Mode.SHARED and parsed.engine is not Engine.POSTGRESQL:
        raise InvalidSpec("mode shared is available for engine postgresql only")
    return parsed


def sql_name(namespace: str, service: str) -> str:
    """The role and database name of a service on a shared server: unique per namespace,
    lower-case letters, digits and underscores only, within PostgreSQL's 63 bytes."""
    return re.sub(r"[^a-z0-9_]", "_", f"{namespace}_{service}".lower())[:63]

"""The user service on real PostgreSQL and NATS: registration and profile changes commit
with their events (outbox), which reach the USERS stream with the full profile and its
version; a taken e-mail or bad input is a 4xx that writes and publishes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polysaga.persistence.database import create_engine
from polysaga.settings import ServiceSettings
from polysaga_tools.servers import NatsServer
from service_client import body, event_name, pg_outbox_drained, published, service_client
from user.bootstrap import build


@pytest.fixture
async def client(database_url: str, nats_server: NatsServer) -> AsyncIterator[AsyncTestClient]:
    settings = ServiceSettings(
        service_name="user",
        database_url=database_url,
        nats_url=nats_server.url,
        relay_poll_interval_s=0.1,
    )
    async with service_client(build, settings) as client:
        yield client


@pytest.fixture
async def js(client: AsyncTestClient, nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def db(client: AsyncTestClient, database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


async def counts(db: AsyncEngine) -> tuple[int, int]:
    """(users, outbox rows)."""
    async with db.connect() as conn:
        users = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
        rows = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    return int(users), int(rows)


async def register(client: AsyncTestClient, name: str, email: str) -> str:
    response = await client.post("/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"user_id"}
    user_id: str = response.json()["user_id"]
    return user_id


async def test_register_get_and_patch_publish_the_full_profile_with_its_version(
    client: AsyncTestClient, js: JetStreamContext, db: AsyncEngine
) -> None:
    user_id = await register(client, "Ada", "ada@example.com")

    got = await client.get(f"/users/{user_id}")
    assert got.status_code == 200
    assert got.json() | {"created_at": None, "updated_at": None} == {
        "user_id": user_id,
        "name": "Ada",
        "email": "ada@example.com",
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    renamed = await client.patch(f"/users/{user_id}", json={"name": "Ada Lovelace"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["version"]) == ("Ada Lovelace", 2)
    unchanged = await client.patch(f"/users/{user_id}", json={"name": "Ada Lovelace"})
    assert unchanged.status_code == 200
    assert unchanged.json()["version"] == 2
    moved = await client.patch(
        f"/users/{user_id}", json={"email": "ada@lovelace.example", "name": "Ada Lovelace"}
    )
    assert moved.status_code == 200
    assert moved.json()["version"] == 3
    assert moved.json()["updated_at"] > moved.json()["created_at"]

    msgs = await published(js, "USERS", "users.events.>", 3, drained=pg_outbox_drained(db))

    assert [event_name(m) for m in msgs] == [
        "UserRegistered",
        "UserProfileUpdated",
        "UserProfileUpdated",
    ]
    assert [m.subject for m in msgs] == [
        "users.events.UserRegistered",
        "users.events.UserProfileUpdated",
        "users.events.UserProfileUpdated",
    ]
    assert [body(m) for m in msgs] == [
        {"user_id": user_id, "name": "Ada", "email": "ada@example.com", "version": 1},
        {"user_id": user_id, "name": "Ada Lovelace", "email": "ada@example.com", "version": 2},
        {
            "user_id": user_id,
            "name": "Ada Lovelace",
            "email": "ada@lovelace.example",
            "version": 3,
        },
    ]
    for msg in msgs:
        headers = msg.headers or {}
        assert headers["ce-subject"] == user_id
        assert headers["ce-source"] == "/polysaga/user"
        assert headers["Nats-Msg-Id"] == headers["ce-id"]
    assert msgs[0].headers is not None
    assert msgs[0].headers["ce-type"] == "io.polysaga.UserRegistered.v1"


async def test_a_taken_email_is_409_and_writes_nothing(
    client: AsyncTestClient, js: JetStreamContext, db: AsyncEngine
) -> None:
    ada = await register(client, "Ada", "ada@example.com")
    grace = await register(client, "Grace", "grace@example.com")
    before = await counts(db)

    duplicate = await client.post("/users", json={"name": "Other", "email": "ADA@example.com"})
    taken = await client.patch(f"/users/{grace}", json={"email": "Ada@Example.com", "name": "G"})

    for response in (duplicate, taken):
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/email-taken")
    assert await counts(db) == before == (2, 2)
    grace_now = (await client.get(f"/users/{grace}")).json()
    assert (grace_now["name"], grace_now["email"], grace_now["version"]) == (
        "Grace",
        "grace@example.com",
        1,
    )
    msgs = await published(js, "USERS", "users.events.>", 2, drained=pg_outbox_drained(db))
    assert [m.headers["ce-subject"] for m in msgs if m.headers] == [ada, grace]


async def test_a_user_may_change_the_case_of_their_own_email(client: AsyncTestClient) -> None:
    user_id = await register(client, "Ada", "ada@example.com")

    response = await client.patch(f"/users/{user_id}", json={"email": "Ada@Example.com"})

    assert response.status_code == 200
    assert (response.json()["email"], response.json()["version"]) == ("Ada@Example.com", 2)


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "Ada"},
        {"email": "ada@example.com"},
        {"name": "Ada", "email": "ada@example.com", "admin": True},
        {"name": "", "email": "ada@example.com"},
        {"name": "   ", "email": "ada@example.com"},
        {"name": "x" * 101, "email": "ada@example.com"},
        {"name": 7, "email": "ada@example.com"},
        {"name": "Ada", "email": "not-an-address"},
        {"name": "Ada", "email": "ada@localhost"},
        {"name": "Ada", "email": "a b@example.com"},
        {"name": "Ada", "email": "a" * 250 + "@example.com"},
        {"name": "Ada", "email": None},
    ],
)
async def test_bad_registrations_are_400_and_write_nothing(
    client: AsyncTestClient, db: AsyncEngine, payload: dict[str, object]
) -> None:
    response = await client.post("/users", json=payload)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize(
    "payload",
    [{}, {"name": None}, {"nickname": "A"}, {"name": "Ada", "user_id": "x"}, {"email": "nope"}],
)
async def test_bad_profile_changes_are_400_and_change_nothing(
    client: AsyncTestClient, db: AsyncEngine, payload: dict[str, object]
) -> None:
    user_id = await register(client, "Ada", "ada@example.com")

    response = await client.patch(f"/users/{user_id}", json=payload)

    assert response.status_code == 400, response.text
    assert (await client.get(f"/users/{user_id}")).json()["version"] == 1
    assert await counts(db) == (1, 1)


async def test_unknown_and_malformed_user_ids(client: AsyncTestClient) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"

    assert (await client.get(f"/users/{unknown}")).status_code == 404
    assert (await client.patch(f"/users/{unknown}", json={"name": "A"})).status_code == 404
    malformed = await client.get("/users/not-a-uuid")
    assert 400 <= malformed.status_code < 500


async def test_a_body_that_is_not_json_is_refused(client: AsyncTestClient) -> None:
    response = await client.post(
        "/users", content=b"name=Ada", headers={"content-type": "text/plain"}
    )

    assert response.status_code == 415

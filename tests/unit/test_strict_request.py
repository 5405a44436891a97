"""The runtime library's request rules, on an app built by the same factory every service
uses (no store, no NATS): bodies that are not UTF-8, control characters anywhere, duplicate
keys, other charsets, a body where none is taken, lenient integers, out-of-range times,
repeated and unknown query parameters. Each is a 4xx problem before any handler runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.testing import TestClient

from polysaga.api_types import (
    ID_PATTERN,
    SKU_PATTERN,
    UUID_PATTERN,
    VISIBLE_TEXT_PATTERN,
    Identifier,
    Sku,
    StrictStruct,
)
from polysaga.app import create_app
from polysaga.money import MONEY_PATTERN
from polysaga.problems import PROBLEM_JSON
from polysaga.runtime import ServiceDefinition
from polysaga.settings import ServiceSettings

CALLS: list[Any] = []


class Line(StrictStruct):
    sku: Sku
    quantity: int


class Thing(StrictStruct):
    user_id: Identifier
    name: Annotated[str, msgspec.Meta(max_length=100, pattern=VISIBLE_TEXT_PATTERN)]
    lines: list[Line]


@post("/things", status_code=201)
async def add_thing(
    data: JSONBody[Thing],
    key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=200)] = None,
) -> dict[str, str]:
    CALLS.append((data, key))
    return {"name": data.name}


@get("/things/{name:str}")
async def read_thing(
    name: FromPath[str],
    as_of: FromQuery[datetime | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    tags: Annotated[list[str] | None, QueryParameter(name="tag")] = None,
) -> dict[str, Any]:
    CALLS.append((name, as_of, limit, tags))
    return {"name": name, "limit": limit, "tags": tags or []}


@post("/rebuild", status_code=200)
async def rebuild() -> dict[str, bool]:
    CALLS.append("rebuild")
    return {"done": True}


@pytest.fixture
def http() -> Iterator[TestClient[Litestar]]:
    definition = ServiceDefinition(
        name="strict-test",
        store="none",
        uses_nats=False,
        route_handlers=[add_thing, read_thing, rebuild],
    )
    CALLS.clear()
    with TestClient(create_app(definition, ServiceSettings(service_name="strict-test"))) as client:
        yield client


def assert_refused(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"], body
    assert CALLS == [], "the handler ran"
    return body


GOOD = {"user_id": "u-1", "name": "Ann", "lines": [{"sku": "TEA.1", "quantity": 2}]}
JSON = {"content-type": "application/json"}


def test_a_good_body_and_good_parameters_pass(http: TestClient[Litestar]) -> None:
    assert http.post("/things", json=GOOD, headers={"Idempotency-Key": "k-1"}).status_code == 201
    response = http.get(
        "/things/tea", params=[("as_of", "2026-01-01T00:00:00+14:00"), ("tag", "a"), ("tag", "b")]
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "tea", "limit": 10, "tags": ["a", "b"]}
    assert http.post("/rebuild").status_code == 200
    assert (
        http.post(
            "/things",
            content=msgspec.json.encode(GOOD),
            headers={"content-type": "application/json; charset=UTF-8"},
        ).status_code
        == 201
    )


# Class 1: bytes that are not UTF-8, in every position a string can take.
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"user_id":"\xff\xfe","name":"Ann","lines":[]}', id="in-a-value"),
        pytest.param(b'{"user_id":"u","name":"An\xc3","lines":[]}', id="truncated-sequence"),
        pytest.param(b'{"user_id":"u","name":"\xed\xa0\x80","lines":[]}', id="encoded-surrogate"),
        pytest.param(b'{"us\xc0\xafer_id":"u","name":"A","lines":[]}', id="overlong-in-a-key"),
        pytest.param(b'\xef\xbb\xbf{"user_id":"u","name":"A","lines":[]}', id="byte-order-mark"),
        pytest.param(b'{"user_id":"u","name":"A","lines":[]}\xff', id="after-the-document"),
    ],
)
def test_a_body_that_is_not_utf8_is_a_400(http: TestClient[Litestar], body: bytes) -> None:
    assert_refused(http.post("/things", content=body, headers=JSON))


# Class 4 (and the hostile suite's "control characters in every string field").
@pytest.mark.parametrize(
    "char", ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"]
)
@pytest.mark.parametrize("field", ["user_id", "name", "sku"])
def test_a_control_character_in_any_string_field_is_a_400(
    http: TestClient[Litestar], field: str, char: str
) -> None:
    for value in (f"x{char}", f"{char}x", f"x{char}y"):
        body = {**GOOD, "lines": [dict(GOOD["lines"][0])]}  # type: ignore[call-overload]
        if field == "sku":
            body["lines"][0]["sku"] = value
        else:
            body[field] = value
        assert_refused(http.post("/things", json=body))


def test_a_control_character_in_a_key_is_a_400(http: TestClient[Litestar]) -> None:
    assert_refused(http.post("/things", content=b'{"user_id\\n":"u"}', headers=JSON))


@pytest.mark.parametrize(
    "pattern", [SKU_PATTERN, UUID_PATTERN, ID_PATTERN, VISIBLE_TEXT_PATTERN, MONEY_PATTERN]
)
def test_no_pattern_accepts_a_trailing_newline(pattern: str) -> None:
    good = {
        SKU_PATTERN: "TEA",
        UUID_PATTERN: "0b5c5a3e-8f3e-4d4b-9a53-3e9a4c2f0a11",
        ID_PATTERN: "u-1",
        VISIBLE_TEXT_PATTERN: "Ann",
        MONEY_PATTERN: "10.00",
    }[pattern]
    typed = Annotated[str, msgspec.Meta(pattern=pattern)]
    assert msgspec.convert(good, typed) == good
    for bad in (f"{good}\n", f"{good}\r\n", f"{good}\n\n"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, typed)


# Class 11: lenient parsing, decided strict.
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        pytest.param(b'{"user_id":"u","user_id":"v","name":"A","lines":[]}', JSON, 400, id="dup"),
        pytest.param(
            b'{"user_id":"u","name":"A","lines":[{"sku":"T","quantity":1,"quantity":2}]}',
            JSON,
            400,
            id="dup-nested",
        ),
        pytest.param(
            '{"user_id":"u","name":"A","lines":[]}'.encode("utf-16"),
            {"content-type": "application/json; charset=utf-16"},
            415,
            id="utf-16",
        ),
        pytest.param(
            msgspec.json.encode(GOOD),
            {"content-type": "application/json; charset=latin-1"},
            415,
            id="latin-1",
        ),
        pytest.param(
            msgspec.json.encode(GOOD), {"content-type": "application/json; x=1"}, 415, id="param"
        ),
        pytest.param(
            msgspec.json.encode(GOOD),
            {"content-type": "application/merge-patch+json"},
            415,
            id="plus-json",
        ),
        pytest.param(msgspec.json.encode(GOOD), {"content-type": "text/plain"}, 415, id="text"),
    ],
)
def test_lenient_bodies_are_refused(
    http: TestClient[Litestar], content: bytes, content_type: dict[str, str], status: int
) -> None:
    assert_refused(http.post("/things", content=content, headers=content_type), status)


@pytest.mark.parametrize("body", [b"{}", b"x", b"\xff", b'{"full": true}'])
def test_a_route_without_a_body_refuses_one(http: TestClient[Litestar], body: bytes) -> None:
    assert_refused(http.post("/rebuild", content=body, headers=JSON))


@pytest.mark.parametrize(
    "params",
    [
        pytest.param("limit=1e1", id="exponent"),
        pytest.param("limit=1.0", id="decimal"),
        pytest.param("limit=01", id="leading-zero"),
        pytest.param("limit=+1", id="plus"),
        pytest.param("limit=1&limit=2", id="twice"),
        pytest.param("limit=", id="empty"),
        pytest.param("limits=1", id="unknown"),
        pytest.param("limit=%ff", id="not-utf8"),
        pytest.param("tag=a%0a", id="newline-in-list"),
        pytest.param("tag=%00", id="nul"),
        pytest.param("as_of=0001-01-01T00:00:00%2B14:00", id="before-year-1-in-utc"),
        pytest.param("as_of=9999-12-31T23:59:59-14:00", id="after-year-9999-in-utc"),
        pytest.param("as_of=2026-01-01T00:00:00", id="no-offset"),
        pytest.param("as_of=2026-01-01T00:00:00%2B00:00%0a", id="time-newline"),
        pytest.param("as_of=10000-01-01T00:00:00Z", id="year-10000"),
    ],
)
def test_lenient_query_parameters_are_refused(http: TestClient[Litestar], params: str) -> None:
    assert_refused(http.get(f"/things/tea?{params}"))


@pytest.mark.parametrize("path", ["tea%0a", "tea%00", "%ff", "te%e2%80%aea"])
def test_a_path_that_is_not_clean_text_is_a_400(http: TestClient[Litestar], path: str) -> None:
    assert_refused(http.get(f"/things/{path}"))


def test_a_control_character_in_a_declared_header_is_a_400(http: TestClient[Litestar]) -> None:
    assert_refused(http.post("/things", json=GOOD, headers={"Idempotency-Key": "k\t1"}))

"""Issue 14, the HTTP classes, against every service of the stack as ``polysaga up`` runs it:
bodies that are not UTF-8 (class 1), out-of-range times (2), values the database would
refuse (3), control characters and trailing newlines in every string field, path and query
parameter (4), and framing errors and lenient parsing (11). Every answer is a 4xx problem,
and afterwards nothing any service stores has changed, no service answered a 5xx or logged
an unhandled error."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import Stack
from stack_client import StackClient
from stack_digest import digest, quiet_digest
from stack_health import LogWatch, server_errors
from waiting import eventually

PROBLEM_JSON = "application/problem+json"
JSON_CT = {"content-type": "application/json"}
# Placed where a string value goes, then replaced by the hostile bytes.
HOLE = "@@HOLE@@"
NOT_UTF8 = [b"\xff\xfe", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"]
CONTROLS = ["\n", "\r\n", "\r", "\x00", "\t", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u202e"]


@dataclass
class World:
    """What the hostile requests aim at: one of everything, created the honest way."""

    sku: str
    user_id: str
    email: str
    order_id: str
    services: dict[str, str]


@dataclass
class Attempt:
    what: str
    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    status: int | tuple[int, ...] = 400


@pytest.fixture
async def world(stack: Stack, http: httpx.AsyncClient, unique: str) -> World:
    services = stack.state["services"]
    c = StackClient(http, services)
    sku, email = f"{unique}-Tea.1", f"ann-{unique}@example.com"
    registered = await http.post(f"{services['user']}/users", json={"name": "Ann", "email": email})
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["user_id"]
    product = {"sku": sku, "name": "Green tea", "price": "2.50"}
    assert (await http.post(f"{services['catalog']}/products", json=product)).status_code == 201

    async def price_learned() -> bool:
        return (await http.get(f"{c.order_url}/prices/{sku}")).status_code == 200

    await eventually(price_learned)
    await c.seed(prices={}, stock={sku: 10}, balances={user_id: "100.00"})
    order = await c.wait_ended(await c.place(user_id, {sku: 1}))
    assert order["status"] == "CONFIRMED"

    async def summarised() -> bool:
        url = f"{services['order-view']}/orders/{order['order_id']}/summary"
        return (await http.get(url)).status_code == 200

    await eventually(summarised)
    return World(sku, user_id, email, order["order_id"], services)


def _body(template: dict[str, Any], path: tuple[Any, ...], value: bytes | str) -> bytes:
    """The template as JSON, with the string at ``path`` replaced by ``value``: raw bytes
    as they are, a str JSON-escaped (so the document itself stays valid JSON)."""
    document = json.loads(json.dumps(template))
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = HOLE
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()[1:-1]
    return json.dumps(document).encode().replace(HOLE.encode(), raw)


def _write_endpoints(w: World) -> list[tuple[str, str, str, dict[str, Any], list[tuple[Any, ...]]]]:
    """Every write endpoint (the gateway's too): (name, method, url, a body it accepts, its
    string fields)."""
    s = w.services
    user_path = f"{s['user']}/users/{w.user_id}"
    return [
        (
            "place order",
            "POST",
            f"{s['order']}/orders",
            {"user_id": w.user_id, "items": [{"sku": w.sku, "quantity": 1}]},
            [("user_id",), ("items", 0, "sku")],
        ),
        ("set price", "PUT", f"{s['order']}/prices/{w.sku}", {"price": "9.99"}, [("price",)]),
        ("set stock", "PUT", f"{s['inventory']}/stock/{w.sku}", {"available": 3}, []),
        (
            "set balance",
            "PUT",
            f"{s['payment']}/accounts/{w.user_id}",
            {"balance": "1.00"},
            [("balance",)],
        ),
        (
            "register user",
            "POST",
            f"{s['user']}/users",
            {"name": "Bob", "email": f"x{w.email}"},
            [("name",), ("email",)],
        ),
        (
            "change profile",
            "PATCH",
            user_path,
            {"name": "Bo", "email": f"y{w.email}"},
            [("name",), ("email",)],
        ),
        (
            "add product",
            "POST",
            f"{s['catalog']}/products",
            {"sku": f"new-{w.sku}", "name": "Mate", "price": "3.00"},
            [("sku",), ("name",), ("price",)],
        ),
        (
            "place order at the gateway",
            "POST",
            f"{s['gateway']}/orders",
            {"items": [{"sku": w.sku, "quantity": 1}]},
            [("items", 0, "sku")],
        ),
        (
            "change product",
            "PATCH",
            f"{s['catalog']}/products/{w.sku}",
            {"name": "Black tea", "price": "2.75"},
            [("name",), ("price",)],
        ),
    ]


def not_utf8_bodies(w: World) -> list[Attempt]:
    """Class 1: every string field of every write endpoint, holding bytes that are not UTF-8."""
    attempts = []
    for name, method, url, template, fields in _write_endpoints(w):
        for path in fields:
            for raw in NOT_UTF8:
                body = _body(template, path, raw)
                attempts.append(
                    Attempt(
                        f"{name} {path} {raw!r}", method, url, {"content": body, "headers": JSON_CT}
                    )
                )
        # Outside any string too: in a key, and after the document.
        attempts.append(
            Attempt(
                f"{name} key",
                method,
                url,
                {"content": b'{"\xff": 1}', "headers": JSON_CT},
            )
        )
        good = json.dumps(template).encode()
        attempts.append(
            Attempt(f"{name} trailer", method, url, {"content": good + b"\xff", "headers": JSON_CT})
        )
    return attempts


def control_characters(w: World) -> list[Attempt]:
    """Class 4: a control character before, inside and after every string field's value."""
    attempts = []
    for name, method, url, template, fields in _write_endpoints(w):
        for path in fields:
            good = template
            for step in path:
                good = good[step]
            for char in CONTROLS:
                for value in (f"{good}{char}", f"{char}{good}", f"{good[:1]}{char}{good[1:]}"):
                    body = _body(template, path, value)
                    attempts.append(
                        Attempt(
                            f"{name} {path} {value!r}",
                            method,
                            url,
                            {"content": body, "headers": JSON_CT},
                        )
                    )
    return attempts


def control_characters_in_parameters(w: World) -> list[Attempt]:
    """Class 3 and 4: path and query values with control characters, which PostgreSQL would
    refuse (a UUID) or store (a SKU, a user id)."""
    s, order_id = w.services, w.order_id
    attempts = []
    for suffix in ("%0a", "%0d%0a", "%00", "%09", "%1b", "%c2%85", "%e2%80%a8"):
        attempts += [
            Attempt(
                f"payments {suffix}", "GET", f"{s['payment']}/payments?order_id={order_id}{suffix}"
            ),
            Attempt(
                f"notifications {suffix}",
                "GET",
                f"{s['notification']}/notifications?order_id={order_id}{suffix}",
            ),
            Attempt(
                f"orders after {suffix}", "GET", f"{s['order']}/orders?after={order_id}{suffix}"
            ),
            # {order_id:uuid} does not match: no route, so a 404 (as for any non-UUID).
            Attempt(f"order {suffix}", "GET", f"{s['order']}/orders/{order_id}{suffix}", {}, 404),
            Attempt(
                f"stock {suffix}",
                "PUT",
                f"{s['inventory']}/stock/{w.sku}{suffix}",
                {"json": {"available": 1}},
            ),
            Attempt(f"stock read {suffix}", "GET", f"{s['inventory']}/stock/{w.sku}{suffix}"),
            Attempt(
                f"price {suffix}",
                "PUT",
                f"{s['order']}/prices/{w.sku}{suffix}",
                {"json": {"price": "1.00"}},
            ),
            Attempt(
                f"account {suffix}",
                "PUT",
                f"{s['payment']}/accounts/{w.user_id}{suffix}",
                {"json": {"balance": "1.00"}},
            ),
            Attempt(
                f"product {suffix}",
                "PATCH",
                f"{s['catalog']}/products/{w.sku}{suffix}",
                {"json": {"name": "x"}},
            ),
            Attempt(
                f"view user {suffix}", "GET", f"{s['order-view']}/users/{w.user_id}{suffix}/orders"
            ),
            Attempt(
                f"gateway user {suffix}", "GET", f"{s['gateway']}/users/{w.user_id}{suffix}/orders"
            ),
            Attempt(
                f"gateway details {suffix}",
                "GET",
                f"{s['gateway']}/orders/{order_id}{suffix}/details",
            ),
            Attempt(
                f"status filter {suffix}", "GET", f"{s['order']}/orders?status=PENDING{suffix}"
            ),
        ]
    # Not UTF-8 once percent-decoded.
    for bad in ("%ff", "%c3", "%ed%a0%80"):
        attempts += [
            Attempt(f"stock {bad}", "GET", f"{s['inventory']}/stock/{w.sku}{bad}"),
            Attempt(f"view user {bad}", "GET", f"{s['order-view']}/users/u{bad}/orders"),
            Attempt(f"payments {bad}", "GET", f"{s['payment']}/payments?order_id={bad}"),
        ]
    attempts.append(
        Attempt(
            "idempotency key with a tab",
            "POST",
            f"{s['order']}/orders",
            {
                "json": {"user_id": w.user_id, "items": [{"sku": w.sku, "quantity": 1}]},
                "headers": {"Idempotency-Key": "key\tone"},
            },
        )
    )
    return attempts


def extreme_times(w: World) -> list[Attempt]:
    """Class 2: as_of outside what a time in UTC can be, or not a time with an offset."""
    url = f"{w.services['order']}/orders/{w.order_id}"
    values = [
        "0001-01-01T00:00:00%2B14:00",
        "0001-01-01T00:00:00%2B00:01",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59.999999-00:01",
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:01Z",
        "2026-01-01T00:00:00%2B24:00",
        "2026-01-01T00:00:00",
        "2026-01-01",
        "1e3",
    ]
    return [Attempt(f"as_of {value}", "GET", f"{url}?as_of={value}") for value in values]


def lenient_parsing(w: World) -> list[Attempt]:
    """Class 11: what was accepted leniently and is now refused."""
    s = w.services
    order = f'{{"user_id": "{w.user_id}", "items": [{{"sku": "{w.sku}", "quantity": 1}}]}}'
    summary = f"{s['order-view']}/orders/{w.order_id}/summary"
    return [
        Attempt(
            "duplicate key",
            "POST",
            f"{s['order']}/orders",
            {"content": order[:-1] + ', "user_id": "someone-else"}', "headers": JSON_CT},
        ),
        Attempt(
            "duplicate key in an item",
            "POST",
            f"{s['order']}/orders",
            {
                "content": order.replace('"quantity": 1', '"quantity": 1, "quantity": 2'),
                "headers": JSON_CT,
            },
        ),
        Attempt(
            "duplicate e-mail key",
            "POST",
            f"{s['user']}/users",
            {
                "content": f'{{"name": "Eve", "email": "e@x.io", "email": "{w.email}"}}',
                "headers": JSON_CT,
            },
        ),
        Attempt(
            "utf-16",
            "POST",
            f"{s['order']}/orders",
            {
                "content": order.encode("utf-16"),
                "headers": {"content-type": "application/json; charset=utf-16"},
            },
            415,
        ),
        Attempt(
            "utf-8 body declared utf-16",
            "POST",
            f"{s['catalog']}/products",
            {
                "json": {"sku": "cs-1", "name": "n", "price": "1"},
                "headers": {"content-type": "application/json; charset=utf-16"},
            },
            415,
        ),
        Attempt("min_version 1e3", "GET", f"{summary}?min_version=1e3"),
        Attempt("min_version 1.0", "GET", f"{summary}?min_version=1.0"),
        Attempt(
            "gateway min_version 1e0",
            "GET",
            f"{s['gateway']}/orders/{w.order_id}/summary?min_version=1e0",
        ),
        Attempt("limit twice", "GET", f"{s['order']}/orders?limit=1&limit=500"),
        Attempt("unknown parameter", "GET", f"{s['order']}/orders?limt=1"),
        Attempt(
            "rebuild with a body",
            "POST",
            f"{s['order-view']}/admin/rebuild",
            {"content": b"\xff\xfe", "headers": JSON_CT},
        ),
        Attempt(
            "rebuild with JSON",
            "POST",
            f"{s['order-view']}/admin/rebuild",
            {"json": {"generation": 1}},
        ),
        Attempt("a GET with a body", "GET", f"{s['order']}/stats", {"content": b"x"}),
    ]


def duplicate_email_with_newline(w: World) -> list[Attempt]:
    """Class 4's uniqueness bypass: the same address plus a newline is not a new address."""
    url = f"{w.services['user']}/users"
    return [
        Attempt(
            f"e-mail {suffix!r}", "POST", url, {"json": {"name": "Ann", "email": w.email + suffix}}
        )
        for suffix in ("\n", "\r\n", "\x00", " ", "\t")
    ]


KINDS = {
    "class 1: bodies that are not UTF-8": not_utf8_bodies,
    "class 2: extreme times": extreme_times,
    "class 3+4: parameters with control characters": control_characters_in_parameters,
    "class 4: control characters in every string field": control_characters,
    "class 4: a second user by e-mail plus a newline": duplicate_email_with_newline,
    "class 11: lenient parsing": lenient_parsing,
}


def _is_problem(response: httpx.Response, status: int | tuple[int, ...]) -> str | None:
    wanted = status if isinstance(status, tuple) else (status,)
    if response.status_code not in wanted:
        return f"{response.status_code} (wanted {wanted}): {response.text[:200]}"
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return f"not a problem: {response.headers.get('content-type')}"
    body = response.json()
    if body.get("status") != response.status_code or not body.get("detail"):
        return f"problem without status or detail: {body}"
    return None


@pytest.fixture
async def watched(stack: Stack, http: httpx.AsyncClient) -> AsyncIterator[None]:
    """No 5xx and no unhandled error during the test."""
    errors_before = await server_errors(http, stack.state)
    logs = LogWatch(stack.state)
    yield
    assert await server_errors(http, stack.state) == errors_before
    assert logs.errors() == []


@pytest.mark.parametrize("kind", list(KINDS))
async def test_hostile_requests_are_4xx_problems_and_change_nothing(
    stack: Stack, http: httpx.AsyncClient, world: World, watched: None, kind: str
) -> None:
    attempts = KINDS[kind](world)
    assert attempts
    before = await quiet_digest(stack.state)
    failures = []
    for attempt in attempts:
        response = await http.request(attempt.method, attempt.url, **attempt.kwargs)
        wrong = _is_problem(response, attempt.status)
        if wrong:
            failures.append(f"{attempt.what}: {wrong}")
    assert failures == [], f"{len(failures)} of {len(attempts)}:\n" + "\n".join(failures)
    assert await digest(stack.state) == before


# --- class 11: framing errors, answered before any route runs ------------------------------

FRAMING = {
    "negative content-length": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
    b"\r\nContent-Length: -1\r\n\r\n{}",
    "content-length abc": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "two content-lengths": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    b"Content-Length: 3\r\n\r\n{}",
    "bad chunk size": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "NUL in a header": b"GET /stats HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare CR in a header": b"GET /stats HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "header without a colon": b"GET /stats HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    "space before the colon": b"GET /stats HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "no host": b"GET /stats HTTP/1.1\r\n\r\n",
    "non-ASCII in the target": b"GET /st\xffats HTTP/1.1\r\nHost: x\r\n\r\n",
}


async def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


@pytest.mark.parametrize("case", list(FRAMING))
async def test_framing_errors_are_problem_details_from_every_service(
    stack: Stack, http: httpx.AsyncClient, watched: None, case: str
) -> None:
    for service, url in stack.state["services"].items():
        status, headers, body = await _raw(url, FRAMING[case])
        assert status == 400, (service, status, body)
        assert headers.get("content-type", "").startswith(PROBLEM_JSON), (service, headers)
        problem = json.loads(body)
        assert problem["status"] == 400 and problem["type"].endswith("/malformed-request")
        # And the service still answers the next, well-formed request.
        assert (await http.get(f"{url}/healthz")).status_code == 200, service


async def test_an_unused_order_id_stays_unknown(world: World, http: httpx.AsyncClient) -> None:
    """The control: a well-formed request of each kind above is still served."""
    s = world.services
    other = str(uuid.uuid4())
    assert (await http.get(f"{s['payment']}/payments", params={"order_id": other})).json() == []
    as_of = "2000-01-01T00:00:00+14:00"
    response = await http.get(f"{s['order']}/orders/{world.order_id}", params={"as_of": as_of})
    assert response.status_code == 404  # it did not exist yet
    summary = f"{s['order-view']}/orders/{world.order_id}/summary"
    assert (await http.get(summary, params={"min_version": "1"})).status_code == 200

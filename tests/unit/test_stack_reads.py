"""The tooling's client to a stack asks a read again when it could not be carried (a
restarted pod behind a port-forward, a restarted process), and never a write or an answer."""

from __future__ import annotations

import httpx
import pytest

from polysaga_tools.stack_access import READ_ATTEMPTS, ReadRetries


class Flaky(httpx.AsyncBaseTransport):
    """Fails the first ``failures`` requests as a dropped connection would, then answers."""

    def __init__(self, failures: int, status: int = 200) -> None:
        self.failures, self.status, self.seen = failures, status, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen <= self.failures:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(self.status, request=request)


async def send(inner: Flaky, method: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=ReadRetries(inner)) as client:
        return await client.request(method, "http://127.0.0.1:9/orders/x")


async def test_a_read_is_asked_again_until_it_is_carried() -> None:
    inner = Flaky(failures=READ_ATTEMPTS - 1)
    assert (await send(inner, "GET")).status_code == 200
    assert inner.seen == READ_ATTEMPTS


async def test_a_read_that_never_gets_through_fails_with_its_own_error() -> None:
    inner = Flaky(failures=READ_ATTEMPTS)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(inner, "GET")
    assert inner.seen == READ_ATTEMPTS


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_write_is_never_sent_twice(method: str) -> None:
    inner = Flaky(failures=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(inner, method)
    assert inner.seen == 1


async def test_an_answer_is_passed_on_as_it_is_even_a_5xx() -> None:
    inner = Flaky(failures=0, status=503)
    assert (await send(inner, "GET")).status_code == 503
    assert inner.seen == 1

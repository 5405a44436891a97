"""The HTTP/1.1 server protocol every service runs: uvicorn's h11 protocol, except that a
request it cannot even parse (a negative or non-numeric Content-Length, a bad chunk size, a
NUL or a bare CR in a header, an over-long header block) is answered with an RFC 9457
problem like every other error, instead of uvicorn's ``400 text/plain``. Such a request
never reaches the application, so the answer is built here, and the connection is closed:
after a framing error nothing more on it can be trusted."""

from __future__ import annotations

import h11
import msgspec
from uvicorn.protocols.http.h11_impl import H11Protocol

from polysaga.problems import PROBLEM_JSON

_FRAMING_PROBLEM = msgspec.json.encode(
    {
        "type": "https://polysaga.io/problems/malformed-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "The request is not well-formed HTTP/1.1 (its request line, headers or"
        " body framing); nothing was done.",
    }
)


class ProblemH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            # The application has answered already (a 404 that never read the body, say)
            # and the broken framing came after: there is no second answer to give.
            self._end_cycle()
            return
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(_FRAMING_PROBLEM)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=_FRAMING_PROBLEM),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self._end_cycle()

    def _end_cycle(self) -> None:
        """Close the connection, and tell a request the application is already handling
        (its head was well-formed, its body is not) that the client is gone: its answer
        is dropped quietly rather than sent after this one."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

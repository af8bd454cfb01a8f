"""uvicorn's HTTP/1.1 protocol (httptools) with the ``ConnectionLimits`` enforced per connection.

uvicorn bounds neither the size of a request's headers, nor the number of open connections,
nor how long a client may take to send its request: a connection that sends nothing stays
open, and one that sends a header a byte at a time holds its socket and its buffer for ever.
``guarded_protocol(limits, request_ids)`` is the protocol class ``serve`` hands to uvicorn
(``uvicorn.Config(http=...)``); it adds, on every connection:

- **connections:** past ``max_connections`` open, a connection's request is answered
  ``ServiceUnavailableException`` (503) and the connection closed;
- **header size:** the request line and headers are counted as they arrive (the exact fields,
  and a backstop on the raw bytes of a head that has not ended, which bounds what httptools
  buffers); past ``max_header_bytes`` or ``max_headers`` the request is refused with
  ``RequestHeaderFieldsTooLargeException`` (431) before the service sees it;
- **time:** a connection idle for ``idle_timeout`` (before its first request too) is closed; a
  request whose headers are not in ``header_timeout`` after its first byte, or whose body is not
  in ``request_timeout``, gets ``RequestTimeoutException`` (408). A body cut short this way is
  never processed: the service sees the client gone (``endpoint._ClientGone``). A client that
  stops reading its answer (the socket's buffers full, writing paused) for ``request_timeout``
  has its connection aborted, which frees the request's task.

Refusals are AWS JSON 1.1 errors rendered by ``protocol.serialize`` with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from marketmeter.config import ConnectionLimits
from marketmeter.errors import (
    AwsError,
    RequestHeaderFieldsTooLargeException,
    RequestTimeoutException,
    ServiceUnavailableException,
)
from marketmeter.metering.ids import IdGenerator, RandomIds
from marketmeter.protocol import serialize
from marketmeter.protocol.endpoint import Receive, Scope, Send

__all__ = [
    "GuardedHttpToolsProtocol",
    "guarded_protocol",
    "guarded_uvicorn_config",
    "refusal_bytes",
]

_CLOSE = (b"connection", b"close")


def guarded_protocol(
    limits: ConnectionLimits, request_ids: IdGenerator
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` enforcing ``limits``."""

    class Guarded(GuardedHttpToolsProtocol):
        pass

    Guarded.limits = limits
    Guarded.request_ids = request_ids
    return Guarded


def refusal_bytes(failure: AwsError, request_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying ``failure``, closing the connection."""
    response = serialize.error(failure)
    status = HTTPStatus(response.status)
    head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
    date = (b"date", formatdate(usegmt=True).encode())
    for name, value in (date, *serialize.headers(response, request_id), _CLOSE):
        head.append(name + b": " + value + b"\r\n")
    return b"".join(head) + b"\r\n" + response.body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection, within ``limits`` (set on the class by ``guarded_protocol``)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    request_ids: ClassVar[IdGenerator] = RandomIds()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests, or in one's request line and headers
        self._head_bytes = 0  # raw bytes received while in a head (the backstop)
        self._field_bytes = 0  # the current head's request target and header fields, exactly
        self._field_count = 0
        self._refusal: AwsError | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._message_started = 0.0
        self._write_stall: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.app = self._answer_with(
                ServiceUnavailableException(
                    f"The server has {self.limits.max_connections} connections open, its "
                    "limit. Retry your request."
                )
            )
        # uvicorn arms its keep-alive timer only after a response: a connection that never
        # sends a request is idle too
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unstall()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading: give it ``request_timeout`` to start again."""
        super().pause_writing()
        if self._write_stall is None:
            self._write_stall = self.loop.call_later(
                self.limits.request_timeout, self.transport.abort
            )

    def resume_writing(self) -> None:
        self._unstall()
        super().resume_writing()

    def _unstall(self) -> None:
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._refusal is None and self._in_head:
            self._check_head(self._head_bytes)
        if self._refusal is not None and not self.transport.is_closing():
            self._refuse(self._refusal)

    # -- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._field_bytes = 0
        self._field_count = 0
        self._message_started = self.loop.time()
        self._arm(self._message_started + self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._field_bytes += len(url)
        self._check_head(self._field_bytes)
        if self._refusal is None:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._field_bytes += len(name) + len(value) + 4  # ": " and CRLF
        self._field_count += 1
        self._check_head(self._field_bytes)
        if self._refusal is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._refusal is not None:
            return
        super().on_headers_complete()
        self._arm(self._message_started + self.limits.request_timeout)

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._disarm()
        if self._refusal is None:
            super().on_message_complete()

    # -- limits ------------------------------------------------------------------------------

    def _check_head(self, size: int) -> None:
        limits = self.limits
        if self._refusal is not None:
            return
        if size > limits.max_header_bytes:
            self._refusal = RequestHeaderFieldsTooLargeException(
                f"The request line and headers must total at most {limits.max_header_bytes} bytes"
            )
        elif self._field_count > limits.max_headers:
            self._refusal = RequestHeaderFieldsTooLargeException(
                f"A request may carry at most {limits.max_headers} header fields"
            )

    def _arm(self, when: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_at(when, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if not self._in_head and cycle is not None and cycle.response_started:
            # answered before its body was in (a 413 on the declared length): nothing to add
            self.transport.close()
            return
        part = "headers" if self._in_head else "body"
        seconds = self.limits.header_timeout if self._in_head else self.limits.request_timeout
        self._refuse(
            RequestTimeoutException(
                f"The request's {part} did not arrive within {seconds} seconds of its first byte"
            )
        )

    def _refuse(self, failure: AwsError) -> None:
        """Answer ``failure`` and close. If an earlier request on this connection (HTTP
        pipelining) is still being answered, close without writing: the two would interleave."""
        self._refusal = failure
        self._disarm()
        earlier = self.cycle
        if earlier is None or earlier.response_complete or not self._in_head:
            self.transport.write(refusal_bytes(failure, self.request_ids()))
        self.transport.close()

    def _answer_with(self, failure: AwsError) -> Any:
        """An ASGI app answering every request with ``failure`` and closing the connection."""
        response = serialize.error(failure)
        request_ids = self.request_ids

        async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
            headers = [*serialize.headers(response, request_ids()), _CLOSE]
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": response.body})

        return refuse


def guarded_uvicorn_config(
    app: Any, limits: ConnectionLimits, host: str = "127.0.0.1", port: int = 0, loop: str = "auto"
) -> uvicorn.Config:
    """uvicorn serving ``app`` within ``limits`` on this module's protocol (a worker of
    ``serve --workers`` is handed its listening socket instead of ``host`` and ``port``). A
    stop waits for in-flight requests as long as a request may take (read, then processing)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http=guarded_protocol(limits, RandomIds()),
        log_level="warning",
        log_config=None,  # uvicorn's records go to the root logger: observe.logs formats them
        access_log=False,
        lifespan="on",
        timeout_keep_alive=limits.idle_timeout,
        timeout_graceful_shutdown=limits.request_timeout + limits.processing_timeout,
        server_header=False,
        # nothing reads the client's address or scheme: no X-Forwarded-* rewriting per request
        proxy_headers=False,
    )

"""The AWS endpoint: the one ``POST /`` handler of every served service, as a plain ASGI
callable.

Several services share it (``protocol.services.ServiceBinding``: a botocore model and its
handlers), told apart by the prefix of ``X-Amz-Target``; each answers with its own content
type (AWS JSON 1.1 or 1.0).

A request's life: body read (refused with 413 at 1 MB or more, before parsing) → the
service and operation ``X-Amz-Target`` names, noted for the journal (not yet acted on) →
authentication (the signature covers method, path and target, so it is checked before the
target is acted on; the credential scope's region must be one the named service is offered
in) → an unknown target refused → authorization (the caller's kind) → JSON parse and model
validation → the operation's handler (typed request → rules → wire result) → one serializer.
A handler that has not answered within ``processing_timeout`` seconds is answered
``InternalServiceErrorException`` (500, which SDKs retry; a retry is answered with the ids of
whatever the abandoned call committed).
Every response carries a fresh ``x-amzn-RequestId``. Any exception that is not an
``AwsError`` is logged with the request id and answered as
``InternalServiceErrorException`` (500) — never a traceback on the wire.

Handlers fill a ``RequestNotes`` (the call's product, each record's verdict, an injected
fault) which, with the bytes in and out, goes to the request journal before the answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from marketmeter.config import DEFAULT_MAX_BODY_BYTES
from marketmeter.errors import (
    AwsError,
    InternalServiceErrorException,
    RequestEntityTooLargeException,
    UnknownOperationException,
)
from marketmeter.metering.clock import Clock, SystemClock
from marketmeter.metering.ids import IdGenerator
from marketmeter.protocol import serialize
from marketmeter.protocol.auth import Authenticator, RawRequest
from marketmeter.protocol.hooks import CallLog, JournalEntry
from marketmeter.protocol.parse import RequestParser, decode_and_validate, unknown_operation
from marketmeter.protocol.services import Handler, RequestNotes, ServiceBinding

__all__ = ["AwsEndpoint", "Handler", "RequestNotes", "ServiceBinding"]

log = logging.getLogger(__name__)

# "BatchMeterUsage requests must be less than 1MB in size" (seed documents).


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    """The client disconnected before its body was complete: nothing is processed or sent."""


@dataclass(slots=True)
class _Exchange:
    """One call as it goes through the endpoint: what the journal will keep of it."""

    notes: RequestNotes
    body: bytes = b""
    operation: str | None = None
    target: str | None = None
    access_key_id: str | None = None
    service: ServiceBinding | None = None


class AwsEndpoint:
    """ASGI app answering the operations of every service it is given."""

    def __init__(
        self,
        services: Sequence[ServiceBinding],
        authenticator: Authenticator,
        request_ids: IdGenerator,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        journal: CallLog | None = None,
        clock: Clock | None = None,
        processing_timeout: float | None = None,
    ) -> None:
        self._services = {binding.service: binding for binding in services}
        self._auth = authenticator
        self._request_ids = request_ids
        self._max_body = max_body_bytes
        self._parser = RequestParser(self._services)
        self._journal = journal if journal is not None and journal.enabled else None
        self._clock = clock or SystemClock()
        self._processing_timeout = processing_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_ids()
        started = time.perf_counter()
        exchange = _Exchange(RequestNotes())
        try:
            response = await self._answer(scope, receive, exchange)
        except _ClientGone:
            return  # a truncated body is never acted on: nobody is left to answer
        except AwsError as failure:
            response = self._error(failure, exchange.service, request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            internal = InternalServiceErrorException(
                "An internal error has occurred. Retry your request."
            )
            response = self._error(internal, exchange.service, request_id)
        if self._journal is not None:
            self._journal.record(
                JournalEntry(
                    time=self._clock.now().timestamp(),
                    wall_time=time.time(),
                    request_id=request_id,
                    operation=exchange.operation,
                    target=exchange.target,
                    access_key_id=exchange.access_key_id,
                    product_code=exchange.notes.product_code,
                    request_body=exchange.body,
                    status=response.status,
                    error_type=response.error_type,
                    response_body=response.body,
                    verdicts=exchange.notes.verdicts,
                    fault=exchange.notes.fault,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )
        headers = serialize.headers(response, request_id)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _answer(
        self, scope: Scope, receive: Receive, exchange: _Exchange
    ) -> serialize.WireResponse:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        exchange.target = _header(headers, b"x-amz-target")
        route = self._parser.route(exchange.target)
        if route is not None:
            # the journal names the operation even when the call is refused before it runs
            exchange.operation = route.operation
            exchange.service = self._services[route.service]
        try:
            body = exchange.body = await self._read_body(headers, receive)
        except _BodyTooLarge:
            raise RequestEntityTooLargeException(
                f"Request body must be less than {self._max_body} bytes"
            ) from None
        request = RawRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b""),
            headers=headers,
            body=body,
            raw_path=scope.get("raw_path") or scope["path"].encode(),
        )
        caller = await self._auth.authenticate(
            request, route.service if route is not None else None
        )
        exchange.access_key_id = caller.access_key_id
        if request.method != "POST":
            raise UnknownOperationException(f"{request.method} is not supported: use POST /")
        binding = exchange.service
        if route is None or binding is None:
            raise unknown_operation(exchange.target)
        name = route.operation
        self._auth.authorize(caller, name)
        handler = binding.handlers.get(name)
        if handler is None:  # in the model, not served
            raise unknown_operation(exchange.target)
        params = decode_and_validate(route.checker, body)
        deadline = asyncio.timeout(self._processing_timeout)
        try:
            async with deadline:
                result = await handler(params, caller, exchange.notes)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("%s not answered within %s s", name, self._processing_timeout)
            raise InternalServiceErrorException(
                f"The request was not processed within {self._processing_timeout:g} seconds. "
                "Retry your request."
            ) from None
        return serialize.success(result, binding.content_type)

    @staticmethod
    def _error(
        failure: AwsError, service: ServiceBinding | None, request_id: str
    ) -> serialize.WireResponse:
        """The error in the named service's content type and error body (JSON 1.1 and
        ``{"__type", "message"}`` when the target names no service)."""
        if service is None:
            return serialize.error(failure)
        body = service.error_body(failure, request_id)
        return serialize.error(failure, service.content_type, body)

    async def _read_body(self, headers: list[tuple[bytes, bytes]], receive: Receive) -> bytes:
        for key, value in headers:
            if key.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared >= self._max_body:
                    raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size >= self._max_body:
                raise _BodyTooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

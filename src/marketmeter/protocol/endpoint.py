"""The AWS endpoint: the one ``POST /`` handler, as a plain ASGI callable.

A request's life: body read (refused with 413 at 1 MB or more, before parsing) →
authentication (the signature covers method, path and target, so it is checked first) →
operation from ``X-Amz-Target`` → authorization (the caller's kind) → JSON parse and model
validation → the operation's handler (typed request → rules → wire result) → one serializer.
A handler that has not answered within ``processing_timeout`` seconds is answered
``InternalServiceErrorException`` (500, which SDKs retry; a retry is answered with the ids of
whatever the abandoned call committed).
Every response carries a fresh ``x-amzn-RequestId``. Any exception that is not an
``AwsError`` is logged with the request id and answered as
``InternalServiceErrorException`` (500) — never a traceback on the wire.

An operation may also have a *lane* (``protocol.batch_lane``): given the raw body first, it
answers the common request in one pass or returns None, and the request then takes the path
above as if there were no lane.

Handlers fill a ``RequestNotes`` (the call's product, each record's verdict, an injected
fault) which, with the bytes in and out, goes to the request journal before the answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

from marketmeter.config import DEFAULT_MAX_BODY_BYTES
from marketmeter.errors import (
    AwsError,
    InternalServiceErrorException,
    RequestEntityTooLargeException,
    UnknownOperationException,
)
from marketmeter.metering.clock import Clock, SystemClock
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.auth import Authenticator, RawRequest
from marketmeter.protocol.hooks import CallLog, JournalEntry
from marketmeter.protocol.parse import RequestParser, decode_and_validate

__all__ = ["AwsEndpoint", "Handler", "Lane", "RequestNotes"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# "BatchMeterUsage requests must be less than 1MB in size" (seed documents).


@dataclass(slots=True)
class RequestNotes:
    """What a handler tells the journal about the call it answered."""

    product_code: str | None = None
    verdicts: tuple[str, ...] = ()
    fault: str | None = None


# An operation's handler: validated JSON params and the caller in, wire JSON out.
Handler = Callable[[dict[str, Any], Caller, RequestNotes], Awaitable[dict[str, Any]]]
# An operation's lane: the raw body in, the answer's bytes out, or None for the handler's path.
Lane = Callable[[bytes, Caller, RequestNotes], Awaitable[bytes | None]]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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


class AwsEndpoint:
    """ASGI app answering the four Metering Service operations."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        authenticator: Authenticator,
        request_ids: IdGenerator,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        journal: CallLog | None = None,
        clock: Clock | None = None,
        processing_timeout: float | None = None,
        lanes: Mapping[str, Lane] | None = None,
    ) -> None:
        self._handlers = dict(handlers)
        self._lanes = dict(lanes or {})
        self._auth = authenticator
        self._request_ids = request_ids
        self._max_body = max_body_bytes
        self._parser = RequestParser()
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
            response = serialize.error(failure)
        except Exception:
            log.exception("request %s failed", request_id)
            response = serialize.error(
                InternalServiceErrorException("An internal error has occurred. Retry your request.")
            )
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
        exchange.target = request.header(b"x-amz-target")
        caller = await self._auth.authenticate(request)
        exchange.access_key_id = caller.access_key_id
        if request.method != "POST":
            raise UnknownOperationException(f"{request.method} is not supported: use POST /")
        name, checker = self._parser.operation(exchange.target)
        exchange.operation = name
        self._auth.authorize(caller, name)
        lane = self._lanes.get(name)
        if lane is not None:
            answer = await self._within_deadline(name, lane(body, caller, exchange.notes))
            if answer is not None:
                return serialize.WireResponse(200, answer)
        params = decode_and_validate(checker, body)
        handler = self._handlers.get(name)
        if handler is None:
            raise UnknownOperationException(f"marketmeter does not implement {name} yet")
        result = await self._within_deadline(name, handler(params, caller, exchange.notes))
        return serialize.success(result)

    async def _within_deadline(self, name: str, work: Awaitable[T]) -> T:
        deadline = asyncio.timeout(self._processing_timeout)
        try:
            async with deadline:
                return await work
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("%s not answered within %s s", name, self._processing_timeout)
            raise InternalServiceErrorException(
                f"The request was not processed within {self._processing_timeout:g} seconds. "
                "Retry your request."
            ) from None

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

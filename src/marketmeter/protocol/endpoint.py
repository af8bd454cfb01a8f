"""The AWS endpoint: the one ``POST /`` handler, as a plain ASGI callable.

A request's life: body read (refused with 413 at 1 MB or more, before parsing) → operation
from ``X-Amz-Target`` → authentication → JSON parse and model validation → the operation's
handler (typed request → rules → wire result) → one serializer. Every response carries a fresh
``x-amzn-RequestId``. Any exception that is not an ``AwsError`` is logged with the request id
and answered as ``InternalServiceErrorException`` (500) — never a traceback on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from marketmeter.errors import (
    AwsError,
    InternalServiceErrorException,
    RequestEntityTooLargeException,
    UnknownOperationException,
)
from marketmeter.metering.ids import IdGenerator
from marketmeter.metering.types import Caller
from marketmeter.protocol import serialize
from marketmeter.protocol.auth import Authenticator, RawRequest
from marketmeter.protocol.parse import RequestParser, decode_and_validate

__all__ = ["DEFAULT_MAX_BODY_BYTES", "AwsEndpoint", "Handler"]

log = logging.getLogger(__name__)

# "BatchMeterUsage requests must be less than 1MB in size" (seed documents).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

# An operation's handler: validated JSON params and the caller in, wire JSON out.
Handler = Callable[[dict[str, Any], Caller], Awaitable[dict[str, Any]]]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


class AwsEndpoint:
    """ASGI app answering the four Metering Service operations."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        authenticator: Authenticator,
        request_ids: IdGenerator,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._handlers = dict(handlers)
        self._auth = authenticator
        self._request_ids = request_ids
        self._max_body = max_body_bytes
        self._parser = RequestParser()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_ids()
        try:
            response = await self._answer(scope, receive)
        except AwsError as failure:
            response = serialize.error(failure)
        except Exception:
            log.exception("request %s failed", request_id)
            response = serialize.error(
                InternalServiceErrorException("An internal error has occurred. Retry your request.")
            )
        headers = [
            (b"content-type", serialize.CONTENT_TYPE),
            (b"content-length", str(len(response.body)).encode()),
            (b"x-amzn-RequestId", request_id.encode()),
        ]
        if response.error_type is not None:
            headers.append((b"x-amzn-ErrorType", response.error_type.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _answer(self, scope: Scope, receive: Receive) -> serialize.WireResponse:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            body = await self._read_body(headers, receive)
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
        )
        if request.method != "POST":
            raise UnknownOperationException(f"{request.method} is not supported: use POST /")
        name, checker = self._parser.operation(request.header(b"x-amz-target"))
        caller = self._auth.authenticate(request, name)
        params = decode_and_validate(checker, body)
        handler = self._handlers.get(name)
        if handler is None:
            raise UnknownOperationException(f"marketmeter does not implement {name} yet")
        return serialize.success(await handler(params, caller))

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
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size >= self._max_body:
                raise _BodyTooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

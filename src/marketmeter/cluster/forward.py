"""Handing a request to the coordinator: the worker's ASGI request replayed, headers and body
as received, to the coordinator's full app over its internal Unix socket, and its answer
streamed back unchanged. Everything a worker does not answer itself (the admin API, the
dashboard, ``/metrics``, every AWS call but the common BatchMeterUsage, and every call while
the test bench is not idle) goes this way, so its semantics are exactly one process's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

__all__ = ["Forwarder"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# hop-by-hop: about the worker's connection, not the request
_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
# and the worker's HTTP server dates its answers itself
_NOT_FORWARDED = _DROPPED | {b"date"}


class Forwarder:
    """Forwards to the app listening on the Unix socket at ``path``."""

    def __init__(self, path: str, connections: int) -> None:
        transport = httpx.AsyncHTTPTransport(
            uds=path,
            # idle connections are let go before the coordinator's idle timeout could close them
            limits=httpx.Limits(
                max_connections=connections, max_keepalive_connections=64, keepalive_expiry=1.0
            ),
        )
        self._client = httpx.AsyncClient(transport=transport, timeout=None)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        body: bytes | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Forward ``scope`` (its ``body`` if already read, else read from ``receive``); the
        answer carries the ``extra`` headers."""
        if body is None:
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROPPED]
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = "http://coordinator" + target.decode("latin-1") + ("?" if query else "")
        request = self._client.build_request(
            scope["method"], url + query.decode("latin-1"), headers=headers, content=body
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError:
            await _unavailable(send, extra)
            return
        try:
            answered = [
                (k, v) for k, v in response.headers.raw if k.lower() not in _NOT_FORWARDED
            ] + list(extra or ())
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": answered}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self._client.aclose()


async def _unavailable(send: Send, extra: list[tuple[bytes, bytes]] | None) -> None:
    """The coordinator is gone: 503 ServiceUnavailableException, which SDKs retry."""
    body = b'{"__type":"ServiceUnavailableException","message":"Service unavailable. Retry."}'
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-ErrorType", b"ServiceUnavailableException"),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})

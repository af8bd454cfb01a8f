"""No NUL characters in admin input: the same answer on every backend.

PostgreSQL cannot store U+0000 in text and SQLite cuts strings at it in places, so a NUL in a
query parameter or anywhere in a JSON body (``\\u0000``) is refused up front with a 400
``{"error", "field"}`` naming the parameter (or ``body``), before any route sees it. Bodies are
read whole (admin bodies are small) and handed on unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from marketmeter.admin.admin_token import Asgi, Message, Receive, Scope, Send

__all__ = ["NUL_MESSAGE", "NulTextGuard"]

NUL_MESSAGE = "must not contain the NUL character (U+0000)"


class NulTextGuard:
    """ASGI middleware in front of the admin app."""

    def __init__(self, app: Asgi) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    await _refuse(send, name.replace("\x00", "") or "query")
                    return
        messages: list[Message] = []
        body = b""
        more = True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if (b"\\u0000" in body or b"\x00" in body) and _has_nul(body):
            await _refuse(send, "body")
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _has_nul(body: bytes) -> bool:
    if b"\x00" in body:
        return True
    try:
        return _contains_nul(orjson.loads(body))
    except orjson.JSONDecodeError:
        return False  # not JSON: the route says so


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


async def _refuse(send: Send, field: str) -> None:
    body = orjson.dumps({"error": NUL_MESSAGE, "field": field})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})

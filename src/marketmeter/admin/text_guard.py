"""Admin input bounded and free of NUL characters: the same answer on every backend.

PostgreSQL cannot store U+0000 in text and SQLite cuts strings at it in places, so a NUL in a
query parameter or anywhere in a JSON body (``\\u0000``) is refused up front with a 400
``{"error", "field"}`` naming the parameter (or ``body``), before any route sees it. Bodies are
read whole, up to ``MAX_ADMIN_BODY_BYTES`` (a longer one is refused with a 413 as soon as its
declared length or its bytes pass the bound), and handed on unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from marketmeter.admin.admin_token import Asgi, Message, Receive, Scope, Send

__all__ = ["MAX_ADMIN_BODY_BYTES", "NUL_MESSAGE", "NulTextGuard"]

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
# An admin body (a catalog entry, fault rules, a clock move) is small; a whole catalog of
# thousands of buyers is a few MiB.
MAX_ADMIN_BODY_BYTES = 16 * 1024 * 1024
_TOO_LARGE = f"must be at most {MAX_ADMIN_BODY_BYTES} bytes"


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
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > MAX_ADMIN_BODY_BYTES:
                await _refuse(send, "body", _TOO_LARGE, 413)
                return
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_ADMIN_BODY_BYTES:
                await _refuse(send, "body", _TOO_LARGE, 413)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
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


async def _refuse(send: Send, field: str, message: str = NUL_MESSAGE, status: int = 400) -> None:
    body = orjson.dumps({"error": message, "field": field})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

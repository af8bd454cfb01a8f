"""Admin input bounded and free of NUL characters: the same answer on every backend.

PostgreSQL cannot store U+0000 in text and SQLite cuts strings at it in places, so a NUL in a
query parameter or anywhere in a JSON body (``\\u0000``) is refused up front with a 400
``{"error", "field"}`` naming the parameter (or ``body``), before any route sees it. Bodies are
read whole, up to ``MAX_ADMIN_BODY_BYTES`` (a longer one is refused with a 413 as soon as its
declared length or its bytes pass the bound), and handed on unchanged; a catalog document sent
as the body of ``POST /catalog`` (``streamed_catalog``) is not read here but streamed by its
route, whose loader refuses a NUL with its problem list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from marketmeter.admin.admin_token import Asgi, Message, Receive, Scope, Send

__all__ = [
    "MAX_ADMIN_BODY_BYTES",
    "MAX_STREAMED_CATALOG_BYTES",
    "NUL_MESSAGE",
    "NulTextGuard",
    "streamed_catalog",
]

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
# An admin body (a catalog entry, fault rules, a clock move) is small; a whole catalog of
# thousands of buyers is a few MiB.
MAX_ADMIN_BODY_BYTES = 16 * 1024 * 1024
_TOO_LARGE = f"must be at most {MAX_ADMIN_BODY_BYTES} bytes"
# A catalog document sent as the body of POST /catalog (the bulk form) is not held: the route
# streams it to a spool file and the loader reads it entry by entry, refusing NUL itself.
MAX_STREAMED_CATALOG_BYTES = 1024 * 1024 * 1024
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def streamed_catalog(content_type: str | None) -> bool:
    """True for a body that is a catalog document itself (a YAML media type)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in _YAML_TYPES


def _streamed(scope: Scope) -> bool:
    if scope.get("method") != "POST" or not scope.get("path", "").endswith("/catalog"):
        return False
    for key, value in scope["headers"]:
        if key == b"content-type":
            return streamed_catalog(value.decode("latin-1"))
    return False


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
        if _streamed(scope):
            await self.app(scope, receive, send)
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

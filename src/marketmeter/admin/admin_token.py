"""The admin token: when the server has one, every admin route requires
``Authorization: Bearer <admin token>``, except ``GET /_marketmeter/health``,
``GET /_marketmeter/openapi.json`` and the SNS subscription routes ``GET /_marketmeter/sns``
(its token authenticates it) and ``GET /_marketmeter/sns/certificate.pem``.

No token sent is a 401, a wrong one a 403, both as ``{"error", "field": "Authorization"}``.
The comparison takes constant time (``hmac.compare_digest``); the token is never logged nor
echoed in an answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["MISSING_TOKEN", "PUBLIC_ROUTES", "WRONG_TOKEN", "AdminTokenGuard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

MISSING_TOKEN = "the admin API requires Authorization: Bearer <admin token>"
WRONG_TOKEN = "the admin token is wrong"
PUBLIC_ROUTES = frozenset(
    (method, path)
    for method in ("GET", "HEAD")
    for path in (
        "/_marketmeter/health",
        "/_marketmeter/openapi.json",
        "/_marketmeter/sns",  # an SNS endpoint's SubscribeURL (its token authenticates it)
        "/_marketmeter/sns/certificate.pem",  # the SigningCertURL
    )
)


class AdminTokenGuard:
    """ASGI middleware in front of the admin app; with ``token=None`` it lets all through."""

    def __init__(self, app: Asgi, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._token is None
            or scope["type"] != "http"
            or (scope["method"], scope["path"]) in PUBLIC_ROUTES
        ):
            await self.app(scope, receive, send)
            return
        sent = _bearer(scope)
        if sent is None:
            await _refuse(send, 401, MISSING_TOKEN)
        elif not hmac.compare_digest(sent, self._token):
            await _refuse(send, 403, WRONG_TOKEN)
        else:
            await self.app(scope, receive, send)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = bytes(value).strip().partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message, "field": "Authorization"})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="marketmeter admin"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

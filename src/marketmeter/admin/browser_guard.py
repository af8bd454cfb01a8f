"""What a web browser can send cross-site is refused: open mode trusts local processes, never
remote pages.

A page the developer visits may make the browser send requests to ``127.0.0.1`` (a form, an
``<img>``, a ``fetch`` in ``no-cors`` mode); with DNS rebinding, the page's own name may resolve
to the server. Three checks stand in front of the admin app, before the admin token's:

- ``Host``: one of the loopback names (``127.0.0.1``, ``localhost``, ``[::1]``), the address the
  server listens on (``serve --host``) or a name of ``serve --allowed-host``, with any port.
  When the server listens on a wildcard address (``0.0.0.0``, ``::``) its names are unknown:
  then only an allow-list given with ``--allowed-host`` (and the loopback names) is enforced,
  and without one any ``Host`` passes. A rebound name is not on the list: 403, field ``Host``.
- ``Origin``: a browser sends it with every cross-origin request that can change anything; one
  that is not the server's own (the ``Host`` the request was sent to, scheme http or https) is
  a 403, field ``Origin``. Tools (SDKs, curl, httpx, the CLI) send none and pass.
- ``Content-Type``: an admin write (POST, PUT, PATCH, DELETE) with a body must say
  ``application/json`` (parameters allowed), or a YAML type for a catalog document streamed
  to ``POST /catalog``: a browser cannot send those cross-site without a CORS preflight, which
  is never answered. Else a 415, field ``Content-Type``. Writes without
  a body are covered by the two checks above.

The AWS endpoint (``POST /``) is not behind this guard: SDKs send
``application/x-amz-json-1.1`` and strict mode authenticates them (docs/reliability.md,
"Security model").
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson

from marketmeter.admin.admin_token import Asgi, Message, Receive, Scope, Send
from marketmeter.admin.text_guard import streamed_catalog

__all__ = [
    "FOREIGN_HOST",
    "FOREIGN_ORIGIN",
    "LOOPBACK_NAMES",
    "NOT_JSON",
    "WILDCARD_ADDRESSES",
    "BrowserGuard",
    "HostPolicy",
]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
FOREIGN_HOST = "the Host is not this server's (loopback names, --host or --allowed-host)"
FOREIGN_ORIGIN = "a request from another origin is refused (open mode trusts no web page)"
NOT_JSON = "an admin write with a body must be sent as Content-Type: application/json"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _name(host: str) -> str:
    """``host`` as compared: lower case, no brackets, no trailing dot."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


class HostPolicy:
    """The names this server answers to. ``listen_host`` is ``serve --host``; ``allowed`` the
    names of ``--allowed-host``. ``HostPolicy.any()`` checks no ``Host`` (in-process apps)."""

    def __init__(self, listen_host: str | None, allowed: Iterable[str] = ()) -> None:
        extra = {name for name, _ in map(_split_host, allowed) if name}
        if listen_host is None:
            self._names: frozenset[str] | None = None
        elif _name(listen_host) in WILDCARD_ADDRESSES and not extra:
            self._names = None  # nobody can list a wildcard's names
        else:
            own = set() if _name(listen_host) in WILDCARD_ADDRESSES else {_name(listen_host)}
            self._names = frozenset(LOOPBACK_NAMES | own | extra)

    @classmethod
    def any(cls) -> HostPolicy:
        return cls(None)

    @property
    def names(self) -> frozenset[str] | None:
        """The names accepted, or None when every ``Host`` is."""
        return self._names

    def accepts(self, host: str | None) -> bool:
        if self._names is None or host is None:
            return True  # a browser always sends Host; HTTP/1.0 tools may not
        name = _split_host(host)[0]
        return name is not None and name in self._names


def _split_host(host: str) -> tuple[str | None, int | None]:
    """``Host``'s name and port (None: no port); (None, None) when it does not parse."""
    try:
        parts = urlsplit("//" + host.strip())
        port = parts.port
    except ValueError:
        return None, None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None, None
    return _name(parts.hostname), port


def _same_origin(origin: str, host: str | None) -> bool:
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or parts.hostname is None or parts.path:
        return False
    name, port = _split_host(host)
    default = _DEFAULT_PORTS[parts.scheme]
    return name == _name(parts.hostname) and (port or default) == (origin_port or default)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


class BrowserGuard:
    """ASGI middleware in front of the admin app (outermost). The dashboard's pages post forms:
    in front of them (``json_writes=False``) the ``Content-Type`` rule is left to their CSRF
    check (``ui.session``)."""

    def __init__(self, app: Asgi, hosts: HostPolicy, json_writes: bool = True) -> None:
        self.app = app
        self.hosts = hosts
        self.json_writes = json_writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            # a repeated Host, Origin or Content-Type is ambiguous: the first one decides
            headers.setdefault(bytes(key).lower(), bytes(value).decode("latin-1"))
        host = headers.get(b"host")
        if not self.hosts.accepts(host):
            await _refuse(send, 403, "Host", FOREIGN_HOST)
            return
        origin = headers.get(b"origin")
        if origin is not None and not _same_origin(origin, host):
            await _refuse(send, 403, "Origin", FOREIGN_ORIGIN)
            return
        content_type = headers.get(b"content-type", "")
        if (
            self.json_writes
            and scope["method"] in _WRITES
            and not _is_json(content_type)
            and not (scope["path"].endswith("/catalog") and streamed_catalog(content_type))
        ):
            has_body, receive = await _peek_body(headers, receive)
            if has_body:
                await _refuse(send, 415, "Content-Type", NOT_JSON)
                return
        await self.app(scope, receive, send)


async def _peek_body(headers: dict[bytes, str], receive: Receive) -> tuple[bool, Receive]:
    """Whether the request carries at least one byte of body, and a ``receive`` that replays
    what was read to find out."""
    length = headers.get(b"content-length")
    if length is not None and b"transfer-encoding" not in headers:
        length = length.strip()
        return not (length.isdigit() and int(length) == 0), receive
    seen: list[Message] = []
    while True:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            break
        if message.get("body", b""):
            break
        if not message.get("more_body", False):
            break
    has_body = any(m["type"] == "http.request" and m.get("body", b"") for m in seen)

    async def replay() -> Message:
        if seen:
            return seen.pop(0)
        return await receive()

    return has_body, replay


async def _refuse(send: Send, status: int, field: str, message: str) -> None:
    body = orjson.dumps({"error": message, "field": field})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

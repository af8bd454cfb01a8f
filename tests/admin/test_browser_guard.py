"""The browser guard in process, around an app that records what reached it: which ``Host``
names pass, which ``Origin`` is the server's own, and which writes need a JSON type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from marketmeter.admin.admin_token import Receive, Scope, Send
from marketmeter.admin.browser_guard import (
    FOREIGN_HOST,
    FOREIGN_ORIGIN,
    NOT_JSON,
    BrowserGuard,
    HostPolicy,
)


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(
    policy: HostPolicy,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    content: Any = None,
) -> tuple[int, Any, list[bytes]]:
    recorder = Recorder()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=BrowserGuard(recorder, policy))
        async with httpx.AsyncClient(transport=transport, base_url="http://unused") as client:
            return await client.request(
                method, "/_marketmeter/reset", headers=headers, content=content
            )

    response = asyncio.run(send())
    found = response.json() if response.content else None
    return response.status_code, found, recorder.bodies


Refused = tuple[int, dict[str, str], list[bytes]]
HOST_REFUSED: Refused = (403, {"error": FOREIGN_HOST, "field": "Host"}, [])
ORIGIN_REFUSED: Refused = (403, {"error": FOREIGN_ORIGIN, "field": "Origin"}, [])
TYPE_REFUSED: Refused = (415, {"error": NOT_JSON, "field": "Content-Type"}, [])


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8686", "localhost:1", "LOCALHOST.", "[::1]", "[::1]:8686", "mm:80"],
)
def test_loopback_names_and_the_listen_host_pass_with_any_port(host: str) -> None:
    assert call(HostPolicy("mm"), headers={"Host": host}) == (204, None, [b""])


@pytest.mark.parametrize(
    "host",
    ["evil.example", "127.0.0.2", "localhost.evil.example", "user@localhost", "localhost:x", "::1"],
)
def test_other_names_and_malformed_hosts_are_refused(host: str) -> None:
    assert call(HostPolicy("127.0.0.1"), headers={"Host": host}) == HOST_REFUSED


def test_a_wildcard_address_checks_no_host_without_an_allow_list() -> None:
    assert HostPolicy("0.0.0.0").names is None
    assert HostPolicy("::").names is None
    assert call(HostPolicy("::"), headers={"Host": "anything"}) == (204, None, [b""])


def test_a_wildcard_address_with_an_allow_list_takes_it_and_the_loopback_names() -> None:
    policy = HostPolicy("0.0.0.0", ["MM:8686", "mm.internal"])
    assert policy.names == frozenset({"127.0.0.1", "localhost", "::1", "mm", "mm.internal"})
    assert call(policy, headers={"Host": "evil.example"}) == HOST_REFUSED


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:8687",
        "https://127.0.0.1",
        "ftp://127.0.0.1:8686",
        "http://127.0.0.1:8686/path",
        "http://127.0.0.1:notaport",
    ],
)
def test_an_origin_other_than_the_host_is_refused(origin: str) -> None:
    headers = {"Host": "127.0.0.1:8686", "Origin": origin}
    assert call(HostPolicy.any(), "GET", headers) == ORIGIN_REFUSED


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1:8686", "http://127.0.0.1:8686"),
        ("localhost", "http://LOCALHOST:80"),
        ("localhost:443", "https://localhost"),
    ],
)
def test_the_servers_own_origin_passes(host: str, origin: str) -> None:
    headers = {"Host": host, "Origin": origin, "Content-Type": "application/json"}
    assert call(HostPolicy("127.0.0.1"), "POST", headers, b"{}") == (204, None, [b"{}"])


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/jsonx", "application/x-amz-json-1.1"]
)
def test_a_write_with_a_body_needs_a_json_type(method: str, content_type: str | None) -> None:
    headers = {"Host": "localhost"} | ({"Content-Type": content_type} if content_type else {})
    assert call(HostPolicy("127.0.0.1"), method, headers, b" ") == TYPE_REFUSED


def test_a_streamed_body_needs_a_json_type_and_an_empty_stream_does_not() -> None:
    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    policy = HostPolicy("127.0.0.1")
    headers = {"Host": "localhost"}
    assert call(policy, "POST", headers, chunks(b"", b"{}")) == TYPE_REFUSED
    assert call(policy, "POST", headers, chunks()) == (204, None, [b""])
    json_type = headers | {"Content-Type": "Application/JSON; charset=utf-8"}
    assert call(policy, "POST", json_type, chunks(b"{", b"}")) == (204, None, [b"{}"])


def test_bodyless_writes_and_reads_pass_without_a_type() -> None:
    policy = HostPolicy("127.0.0.1")
    assert call(policy, "POST", {"Host": "localhost"}) == (204, None, [b""])
    assert call(policy, "GET", {"Host": "localhost"}, b"x") == (204, None, [b"x"])

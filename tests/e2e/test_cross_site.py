"""What a web page can make a browser send to a real ``marketmeter serve`` in open mode is
refused, over raw HTTP (``http.client``: the exact headers a browser would send), and nothing
changes; tools (no ``Origin``) and same-origin requests still pass. The AWS endpoint is not
behind the guard."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketmeter.admin.browser_guard import FOREIGN_HOST, FOREIGN_ORIGIN, NOT_JSON
from marketmeter.server import WILDCARD_WARNING
from marketmeter.testing.admin_client import MarketmeterAdmin
from tests.e2e.cli_runner import mm
from tests.e2e.server_process import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]

RULE = {"operation": "MeterUsage", "error": {"code": "ThrottlingException"}}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with the default options (open mode, 127.0.0.1)."""
    db = tmp_path_factory.mktemp("cross-site") / "ledger.db"
    process = ServerProcess(db, None).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def admin(guarded: ServerProcess) -> Iterator[MarketmeterAdmin]:
    client = MarketmeterAdmin(guarded.url)
    client.reset()
    client.faults.set(RULE)  # the state a cross-site reset would wipe
    yield client
    client.close()


def raw(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> tuple[int, Any]:
    """One request with exactly ``headers`` (and ``Host``: ``host`` or the server's own)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"127.0.0.1:{server.port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        raw_body = response.read()
        if response.getheader("content-type", "").startswith("application/json"):
            return response.status, json.loads(raw_body)
        return response.status, raw_body.decode()
    finally:
        connection.close()


def unchanged(admin: MarketmeterAdmin) -> None:
    assert [rule["operation"] for rule in admin.faults.rules()] == ["MeterUsage"]


def test_a_text_plain_post_to_reset_is_refused_415(
    guarded: ServerProcess, admin: MarketmeterAdmin
) -> None:
    # what <form enctype="text/plain" method="post"> sends (its Origin aside)
    answer = raw(guarded, "POST", "/_marketmeter/reset", b"{}", {"Content-Type": "text/plain"})
    assert answer == (415, {"error": NOT_JSON, "field": "Content-Type"})
    unchanged(admin)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"],
)
def test_a_write_with_a_body_a_form_can_send_is_refused(
    guarded: ServerProcess, admin: MarketmeterAdmin, content_type: str
) -> None:
    body = json.dumps([RULE]).encode()
    answer = raw(
        guarded, "DELETE", "/_localstack/chaos/faults", body, {"Content-Type": content_type}
    )
    assert answer == (415, {"error": NOT_JSON, "field": "Content-Type"})
    assert raw(guarded, "PUT", "/_marketmeter/faults", body) == (
        415,
        {"error": NOT_JSON, "field": "Content-Type"},
    )  # no type at all
    unchanged(admin)


def test_a_foreign_origin_is_refused_403_even_with_json(
    guarded: ServerProcess, admin: MarketmeterAdmin
) -> None:
    headers = {"Origin": "http://evil.example", "Content-Type": "application/json"}
    answer = raw(guarded, "POST", "/_marketmeter/reset", b"{}", headers)
    assert answer == (403, {"error": FOREIGN_ORIGIN, "field": "Origin"})
    # a bodyless write, and an opaque origin (a sandboxed frame, a file:// page)
    answer = raw(guarded, "POST", "/_marketmeter/reset", None, {"Origin": "null"})
    assert answer == (403, {"error": FOREIGN_ORIGIN, "field": "Origin"})
    # the same host on another port is another origin
    other_port = {"Origin": f"http://127.0.0.1:{guarded.port + 1}"}
    answer = raw(guarded, "DELETE", "/_marketmeter/faults", None, other_port)
    assert answer == (403, {"error": FOREIGN_ORIGIN, "field": "Origin"})
    unchanged(admin)


def test_a_foreign_host_is_refused_403_dns_rebinding(
    guarded: ServerProcess, admin: MarketmeterAdmin
) -> None:
    """A rebound name sends its own Host, and its Origin matches it: the Host decides."""
    host = f"evil.example:{guarded.port}"
    headers = {"Origin": f"http://{host}", "Content-Type": "application/json"}
    answer = raw(guarded, "POST", "/_marketmeter/reset", b"{}", headers, host=host)
    assert answer == (403, {"error": FOREIGN_HOST, "field": "Host"})
    # reads too: the page could read the answer on its own origin
    assert raw(guarded, "GET", "/_marketmeter/faults", host="evil.example") == (
        403,
        {"error": FOREIGN_HOST, "field": "Host"},
    )
    unchanged(admin)


def test_tools_and_same_origin_pages_still_pass(
    guarded: ServerProcess, admin: MarketmeterAdmin
) -> None:
    same_origin = {"Origin": f"http://127.0.0.1:{guarded.port}"}
    status, rules = raw(guarded, "GET", "/_marketmeter/faults", None, same_origin)
    assert (status, [rule["operation"] for rule in rules]) == (200, ["MeterUsage"])
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    answer = raw(guarded, "DELETE", "/_marketmeter/faults", b"", {**same_origin, **json_type})
    assert answer == (200, [])
    admin.faults.set(RULE)
    # by every loopback name, with any port
    for host in ("localhost", f"[::1]:{guarded.port}", "127.0.0.1:1"):
        status, rules = raw(guarded, "GET", "/_marketmeter/faults", host=host)
        assert (status, len(rules)) == (200, 1)
    # a bodyless write from a tool (no Origin, no Content-Type)
    assert raw(guarded, "DELETE", "/_marketmeter/faults") == (200, [])


def test_the_aws_endpoint_is_not_behind_the_guard(guarded: ServerProcess) -> None:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSMPMeteringService.ResolveCustomer",
    }
    status, body = raw(guarded, "POST", "/", b'{"RegistrationToken": "x"}', headers, "evil")
    assert (status, json.loads(body)["__type"]) == (400, "InvalidTokenException")


def test_with_a_wildcard_address_and_no_allow_list_any_host_passes(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "ledger.db", None, "--host", "0.0.0.0").start()
    try:
        assert raw(server, "GET", "/_marketmeter/faults", host="mm.internal") == (200, [])
        answer = raw(server, "GET", "/_marketmeter/faults", None, {"Origin": "http://evil.example"})
        assert answer == (403, {"error": FOREIGN_ORIGIN, "field": "Origin"})
    finally:
        server.stop()
    assert WILDCARD_WARNING in server.output()


def test_with_a_wildcard_address_the_allow_list_applies(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "ledger.db", None, "--host", "0.0.0.0", "--allowed-host", "mm.internal"
    ).start()
    try:
        assert raw(server, "GET", "/_marketmeter/faults", host="mm.internal") == (200, [])
        assert raw(server, "GET", "/_marketmeter/faults", host="localhost") == (200, [])
        assert raw(server, "GET", "/_marketmeter/faults", host="evil.example") == (
            403,
            {"error": FOREIGN_HOST, "field": "Host"},
        )
    finally:
        server.stop()
    assert WILDCARD_WARNING not in server.output()


def test_an_allowed_host_is_a_service_name_the_server_answers_to(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "ledger.db", None, "--allowed-host", "marketmeter").start()
    try:
        host = f"marketmeter:{server.port}"
        same_origin = {"Origin": f"http://{host}"}
        assert raw(server, "GET", "/_marketmeter/faults", None, same_origin, host) == (200, [])
        assert raw(server, "GET", "/_marketmeter/faults", host="evil.example") == (
            403,
            {"error": FOREIGN_HOST, "field": "Host"},
        )
    finally:
        server.stop()


def test_a_malformed_allowed_host_is_one_clear_line(tmp_path: Path) -> None:
    refused = mm("serve", "--db", "never.db", "--allowed-host", "http://mm/", cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (
        2,
        "Error: Invalid value for '--allowed-host' (env var: 'MARKETMETER_ALLOWED_HOST'): "
        "'http://mm/' is not a host name or address (e.g. marketmeter, mm.internal) "
        "(see 'marketmeter serve -h')\n",
    )
    assert not (tmp_path / "never.db").exists()

"""The dashboard over plain HTTP, in open mode (no admin token): every page answers with its
security headers, forms need the CSRF cookie's value, the browser guard still refuses a foreign
Host or Origin, and what is not a page is a 404. One in-process server for the module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from marketmeter.config import Settings
from marketmeter.testing import MarketmeterServer
from tests.conftest import CATALOG

UI = "/_marketmeter/ui"
PAGES = ["/", "/live", "/usage", "/usage?window=month&groupBy=customer", "/journal"]
PAGES += ["/catalog", "/notifications", "/bench"]
ALICE = "444455556666"
STRICT_TOKEN = "strict-token-for-the-dashboard"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with (
        MarketmeterServer(catalog=CATALOG) as server,
        httpx.Client(base_url=server.endpoint, timeout=10) as client,
    ):
        yield client


def csrf(http: httpx.Client) -> str:
    page = http.get(f"{UI}/bench")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_its_headers(http: httpx.Client, path: str) -> None:
    page = http.get(UI + path)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"


def test_the_static_files_and_the_bare_path(http: httpx.Client) -> None:
    assert (
        http.get(f"{UI}/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    )
    assert http.get(f"{UI}/static/dashboard.css").status_code == 200
    assert http.get(UI, follow_redirects=True).url.path == f"{UI}/"
    assert http.get(f"{UI}/login").headers["location"] == f"{UI}/"  # open mode: no login
    assert http.get(f"{UI}/nothing").status_code == 404


def test_a_form_post_acts_and_goes_back(http: httpx.Client) -> None:
    token = csrf(http)
    done = http.post(f"{UI}/do/clock-freeze", data={"csrf": token, "back": "/bench"})
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"{UI}/bench?done=clock+frozen+at+")
    refused = http.post(f"{UI}/do/clock-advance", data={"csrf": token, "seconds": "soon"})
    assert refused.headers["location"] == f"{UI}/?error=seconds%3A+must+be+a+number"
    elsewhere = http.post(f"{UI}/do/clock-reset", data={"csrf": token, "back": "//evil"})
    assert elsewhere.headers["location"].startswith(f"{UI}/?done=")
    assert http.post(f"{UI}/do/nothing", data={"csrf": token}).status_code == 404
    assert http.get("/_marketmeter/clock").json()["mode"] == "system"


def test_forms_need_the_csrf_value(http: httpx.Client) -> None:
    csrf(http)
    bare = httpx.post(f"{http.base_url}{UI}/do/clock-freeze", data={"back": "/bench"})
    assert bare.status_code == 403  # no cookie, no field
    forged = http.post(f"{UI}/do/clock-freeze", data={"csrf": "y" * 43})
    assert forged.status_code == 403
    not_a_form = http.post(f"{UI}/do/clock-freeze", json={"csrf": csrf(http)})
    assert not_a_form.status_code == 400
    assert http.get("/_marketmeter/clock").json()["mode"] == "system"


def test_the_browser_guard_stands_in_front(http: httpx.Client) -> None:
    token = csrf(http)
    cross = http.post(
        f"{UI}/do/clock-freeze",
        data={"csrf": token},
        headers={"Origin": "http://evil.example"},
    )
    assert (cross.status_code, cross.json()["field"]) == (403, "Origin")
    rebound = http.get(f"{UI}/", headers={"Host": "rebound.example"})
    assert (rebound.status_code, rebound.json()["field"]) == (403, "Host")


def act(http: httpx.Client, action: str, /, **fields: str) -> tuple[str, str]:
    """Post ``action``; ``("done" | "error", message)`` from where it sends back."""
    answer = http.post(f"{UI}/do/{action}", data={"csrf": csrf(http), "back": "/bench", **fields})
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    ((kind, (message,)),) = query.items()
    return kind, message


def test_every_action_reaches_the_operator(http: httpx.Client) -> None:
    buyer = "999900001111"
    assert act(http, "buyer-add", account_id=buyer, name="Zoe") == (
        "done",
        f"buyer {buyer} added",
    )
    kind, message = act(http, "subscribe", productCode="prod-legacy", buyerAccountId=buyer)
    assert (kind, message[:27]) == ("done", "subscribed: agreement agmt-")
    agreement = message.rsplit(" ", 1)[1]
    for verb, state in (("suspend", "suspended"), ("resubscribe", "subscribed")):
        assert act(http, "transition", agreement=agreement, verb=verb) == (
            "done",
            f"{verb}: agreement {agreement} is {state}",
        )
    kind, message = act(
        http, "transition", agreement=agreement, verb="entitlement-update", freeTrial="on"
    )
    assert (kind, message) == ("done", f"entitlement-update: agreement {agreement} is subscribed")
    assert act(http, "transition", agreement=agreement, verb="unsubscribe")[0] == "done"
    assert act(http, "transition", agreement="agmt-none", verb="suspend") == (
        "error",
        "agreement: no agreement with id or LicenseArn 'agmt-none'",
    )
    kind, message = act(http, "mint-token", productCode="prod-legacy", buyerAccountId=ALICE)
    assert (kind, message[:26]) == ("done", "minted registration token ")
    kind, message = act(http, "rotate-key")
    assert re.fullmatch(r"RegisterUsage key version \d+ made", message), message
    assert act(http, "snapshot-restore", name="nothing") == (
        "error",
        "name: no snapshot named 'nothing'",
    )
    rule = '{"operation": "MeterUsage", "error": {"code": "ThrottlingException"}}'
    kind, message = act(http, "fault-add", rule=rule)
    assert kind == "done"
    rule_id = message.split()[2]
    assert act(http, "fault-remove", id=rule_id) == ("done", f"fault rule {rule_id} removed")
    assert act(http, "fault-add", rule="{") == ("error", "rule: must be JSON")
    assert act(http, "latency", latency="5") == ("done", "added latency: 5 ms")
    assert act(http, "latency", latency="0") == ("done", "added latency: 0 ms")
    assert act(http, "quota", profile="aws") == ("done", "quota profile: aws")
    assert act(http, "quota", profile="off") == ("done", "quota profile: off")
    assert act(http, "snapshot-save", name="noon") == ("done", "snapshot 'noon' saved")
    assert act(http, "snapshot-restore", name="noon") == ("done", "snapshot 'noon' restored")
    assert act(http, "snapshot-delete", name="noon") == ("done", "snapshot 'noon' deleted")
    assert act(http, "clock-set", time="2026-12-01T10:00:00Z") == (
        "done",
        "clock set to 2026-12-01T10:00:00Z",
    )
    assert act(http, "clock-reset")[0] == "done"
    assert act(http, "journal-clear") == ("done", "journal cleared")
    assert act(http, "clock-freeze")[0] == "done"
    assert act(http, "reset") == ("error", "confirm: type reset to confirm")
    assert http.get("/_marketmeter/clock").json()["mode"] == "frozen"
    kind, message = act(http, "reset", confirm="reset")
    assert re.fullmatch(r"reset: \d+ row\(s\) deleted", message), message
    assert http.get("/_marketmeter/clock").json()["mode"] == "system"


def test_a_strict_dashboard_refuses_forged_sessions(tmp_path: Path) -> None:
    settings = Settings(
        port=0, db=str(tmp_path / "l.db"), catalog=CATALOG, admin_token=STRICT_TOKEN
    )
    with MarketmeterServer(settings=settings) as server:
        for cookie in ("", "abc", "abc.def", "é.é", "x." + "0" * 64):
            sent = {b"Cookie": f"mm_session={cookie}".encode()} if cookie else {}
            page = httpx.get(f"{server.endpoint}{UI}/bench", headers=sent)
            assert (page.status_code, page.headers["location"]) == (303, f"{UI}/login"), cookie
        live = httpx.get(f"{server.endpoint}{UI}/live")
        assert (live.status_code, live.headers["location"]) == (303, f"{UI}/login")
        # the admin API's bearer token is not a dashboard session, nor the other way round
        bearer = {"Authorization": f"Bearer {STRICT_TOKEN}"}
        assert httpx.get(f"{server.endpoint}{UI}/bench", headers=bearer).status_code == 303

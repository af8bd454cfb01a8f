"""A seller's day in the dashboard, driven in a real Chromium (Debian's ``chromium`` through
playwright, never a downloaded browser) against a real ``marketmeter serve`` in strict mode
(an admin token): sign in, subscribe a buyer, meter with boto3 and see the usage chart and table
change, read the call in the journal and replay its ``aws`` command, inject a fault and see it
hit, move the clock, download the CSV and compare it with the ledger, restore a snapshot.

One server and one browser page for the module; every page is screenshot into the test's
``tmp_path`` (and into ``$MARKETMETER_SCREENSHOTS`` when set: docs/images is made so); no page
may log a console error.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import orjson
import pytest

from tests.conftest import CATALOG
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "dashboard-admin-token-0123456789"
BUYER = "123451234512"
UI = "/_marketmeter/ui"

if not CHROMIUM.exists() and not os.environ.get("CI"):  # CI installs it (.ci/run)
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("dashboard") / "ledger.db"
    process = ServerProcess(db, CATALOG, "--admin-token", TOKEN).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


class Browser:
    """One Chromium page, its console errors, and where its screenshots go."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.shots: Path | None = None
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda dialog: dialog.accept())

    def open(self, path: str) -> Any:
        self.page.goto(f"{self.base}{UI}{path}")
        return self.page

    def shot(self, name: str) -> None:
        assert self.shots is not None
        self.page.screenshot(path=str(self.shots / f"{name}.png"))
        published = os.environ.get("MARKETMETER_SCREENSHOTS")
        if published:
            shutil.copy(self.shots / f"{name}.png", Path(published) / f"dashboard-{name}.png")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


def new_browser(chromium: Any, server: ServerProcess) -> Browser:
    context = chromium.new_context(viewport={"width": 1180, "height": 760})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return Browser(page, server.url)


def sign_in(browser: Browser, token: str) -> Any:
    page = browser.open("/login")
    page.fill("input[name=token]", token)
    page.click("main button[type=submit]")
    return page


@pytest.fixture(scope="module")
def browser(chromium: Any, server: ServerProcess) -> Iterator[Browser]:
    """A page signed in to the dashboard, shared by the module's tests."""
    signed_in = new_browser(chromium, server)
    assert sign_in(signed_in, TOKEN).url.endswith(f"{UI}/")
    yield signed_in
    signed_in.page.context.close()


def rows(page: Any, table: str) -> list[list[str]]:
    """The body rows of the table ``#table``, cell texts."""
    found: list[list[str]] = page.eval_on_selector_all(
        f"#{table} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )
    return found


def meter(server: ServerProcess, customer: str, when: float, quantity: int) -> dict[str, Any]:
    client = make_client(server.url, retries={"total_max_attempts": 1, "mode": "standard"})
    answer: dict[str, Any] = client.batch_meter_usage(
        ProductCode="prod-legacy",
        UsageRecords=[
            {
                "Timestamp": datetime.fromtimestamp(when, UTC),
                "CustomerIdentifier": customer,
                "Dimension": "users",
                "Quantity": quantity,
            }
        ],
    )
    return answer


def service_now(admin: httpx.Client) -> float:
    epoch: float = admin.get("/_marketmeter/clock").json()["epoch"]
    return epoch


def hour(epoch: float) -> str:
    start = int(epoch // 3600) * 3600
    return datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")


def test_sign_in_is_required(chromium: Any, server: ServerProcess, tmp_path: Path) -> None:
    assert f"\nDashboard: {server.url}/_marketmeter/ui/\n" in server.output()  # the banner
    visitor = new_browser(chromium, server)
    visitor.shots = tmp_path
    try:
        page = visitor.open("/")
        assert page.url.endswith(f"{UI}/login")
        sign_in(visitor, "not-the-token")
        assert page.locator(".flash.error").inner_text() == "wrong admin token"
        visitor.shot("login")
        # the refusal is a 403, which Chromium logs; the only console error of the module
        assert [e for e in visitor.errors if "403" not in e] == []
        visitor.errors.clear()
        assert sign_in(visitor, TOKEN).url.endswith(f"{UI}/")
        cookies = {c["name"]: c for c in page.context.cookies()}
        session = cookies["mm_session"]
        assert (session["httpOnly"], session["sameSite"]) == (True, "Strict")
        assert TOKEN not in session["value"]
        assert cookies["mm_csrf"]["httpOnly"] is True
        page.click("header button")  # sign out
        assert page.url.endswith(f"{UI}/login")
        assert visitor.open("/bench").url.endswith(f"{UI}/login")
        assert visitor.errors == [], visitor.errors
    finally:
        page.context.close()


def test_a_sellers_day(
    browser: Browser, server: ServerProcess, admin: httpx.Client, tmp_path: Path
) -> None:
    browser.shots = tmp_path
    page = browser.open("/")
    assert page.locator("h1").inner_text() == "Overview"
    browser.shot("overview")

    # subscribe a buyer
    page = browser.open("/catalog")
    page.select_option("form[action$='/do/subscribe'] select[name=productCode]", "prod-legacy")
    page.fill("form[action$='/do/subscribe'] input[name=buyerAccountId]", BUYER)
    page.click("form[action$='/do/subscribe'] button")
    assert page.locator(".flash.done").inner_text().startswith("subscribed: agreement agmt-")
    agreement = admin.get("/_marketmeter/agreements", params={"buyer": BUYER}).json()
    (subscribed,) = agreement["agreements"]
    assert subscribed["state"] == "subscribed"
    assert page.locator(
        f"tr[data-agreement='{subscribed['agreementId']}'] .state"
    ).inner_text() == ("subscribed")
    browser.shot("catalog")
    customer = subscribed["customerIdentifier"]

    # the usage page before and after metering
    page = browser.open("/usage?window=hour&product=prod-legacy")
    assert rows(page, "usage-table") == []
    now = service_now(admin)
    first = meter(server, customer, now, 7)
    assert first["Results"][0]["Status"] == "Success"
    page.reload()
    assert rows(page, "usage-table") == [[hour(now), "users", "7", "1"]]
    bar = page.locator("#charts figure rect.bar")
    assert bar.count() == 1
    assert bar.get_attribute("data-value") == "7"
    browser.shot("usage")

    # the call in the journal, and its aws command run again (an idempotent retry)
    page = browser.open("/journal")
    latest = rows(page, "journal")[0]
    assert latest[2:4] == ["BatchMeterUsage", "prod-legacy"]
    page.click("#journal tbody tr:first-child a")
    assert page.locator("#status").inner_text() == "200"
    request = orjson.loads(page.locator("#request").inner_text())
    assert request["ProductCode"] == "prod-legacy"
    assert request["UsageRecords"][0]["CustomerIdentifier"] == customer
    response = orjson.loads(page.locator("#response").inner_text())
    assert response["Results"][0]["MeteringRecordId"] == first["Results"][0]["MeteringRecordId"]
    command = shlex.split(page.locator("#aws-command").inner_text())
    browser.shot("journal-entry")
    assert command[:3] == ["aws", "meteringmarketplace", "batch-meter-usage"]
    aws = Path(sys.executable).with_name("aws")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAMMDASHBOARD00001",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    replay = subprocess.run(
        [str(aws), *command[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert replay.returncode == 0, replay.stderr
    again = orjson.loads(replay.stdout)["Results"][0]
    assert (again["Status"], again["MeteringRecordId"]) == (
        "Success",
        first["Results"][0]["MeteringRecordId"],
    )

    # save a snapshot of the morning
    page = browser.open("/bench")
    page.fill("form[action$='/do/snapshot-save'] input[name=name]", "morning")
    page.click("form[action$='/do/snapshot-save'] button")
    assert page.locator(".flash.done").inner_text() == "snapshot 'morning' saved"

    # inject a fault and see it hit, on the bench and live on the overview
    page.fill(
        "form[action$='/do/fault-add'] textarea",
        '{"operation": "BatchMeterUsage", "error": {"code": "ThrottlingException"}, "times": 1}',
    )
    page.click("form[action$='/do/fault-add'] button")
    assert page.locator(".flash.done").inner_text() == "fault rule 1 added"
    overview = browser.open("/")
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        meter(server, customer, now, 7)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    # the live refresh shows it, without a reload
    playwright_api.expect(overview.locator("#errors")).to_contain_text("ThrottlingException")
    assert ["ThrottlingException", "1"] in rows(overview, "errors")
    browser.shot("overview-live")
    page = browser.open("/journal?errorType=ThrottlingException")
    (hit,) = rows(page, "journal")
    assert hit[2:8] == [
        "BatchMeterUsage",
        "prod-legacy",
        "AKIATESTSELLER000001",
        "400",
        "ThrottlingException",
        "fault rule 1: ThrottlingException",
    ]
    page = browser.open("/bench")
    assert rows(page, "rules") == [["none"]]  # spent: it was for one call

    # move the clock an hour on, and meter in the new hour
    page.click("form[action$='/do/clock-freeze'] button")
    assert page.locator("#bench-clock").inner_text().endswith("Z")
    page.fill("form[action$='/do/clock-advance'] input[name=seconds]", "3600")
    page.click("form[action$='/do/clock-advance'] button")
    later = service_now(admin)
    assert later >= now + 3600
    assert (
        page.locator("#bench-clock").inner_text() == admin.get("/_marketmeter/clock").json()["now"]
    )
    browser.shot("bench")
    assert meter(server, customer, later, 5)["Results"][0]["Status"] == "Success"
    page = browser.open("/usage?window=hour&product=prod-legacy")
    assert rows(page, "usage-table") == [
        [hour(now), "users", "7", "1"],
        [hour(later), "users", "5", "1"],
    ]
    assert page.locator("#charts figure rect.bar").count() == 2

    # the CSV download equals the ledger, summed per hour
    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_text("utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    ledger = admin.get("/_marketmeter/usage", params={"product": "prod-legacy"}).json()
    sums: dict[tuple[str, str], Decimal] = {}
    for record in ledger["records"]:
        key = (record["hour"], record["dimension"])
        sums[key] = sums.get(key, Decimal(0)) + Decimal(str(record["quantity"]))
    assert {(r["windowStart"], r["dimension"]): Decimal(r["quantity"]) for r in exported} == sums
    assert list(exported[0]) == ["windowStart", "windowEnd", "dimension", "quantity", "records"]

    # restore the morning: the later record is gone
    page = browser.open("/bench")
    page.click("tr[data-snapshot='morning'] form[action$='/do/snapshot-restore'] button")
    assert page.locator(".flash.done").inner_text() == "snapshot 'morning' restored"
    page = browser.open("/usage?window=hour&product=prod-legacy")
    assert rows(page, "usage-table") == [[hour(now), "users", "7", "1"]]

    page = browser.open("/notifications")
    assert rows(page, "events")[0][2] == "subscribe-success"
    browser.shot("notifications")
    assert browser.errors == []


def test_a_form_without_the_csrf_value_is_refused(
    browser: Browser, server: ServerProcess, admin: httpx.Client
) -> None:
    mode = admin.get("/_marketmeter/clock").json()["mode"]
    page = browser.open("/bench")
    page.eval_on_selector(
        "form[action$='/do/clock-reset'] input[name=csrf]", "input => input.value = 'forged'"
    )
    page.click("form[action$='/do/clock-reset'] button")
    assert page.locator(".flash.error").inner_text() == (
        "csrf: the form is stale or not from this dashboard: reload"
    )
    assert admin.get("/_marketmeter/clock").json()["mode"] == mode  # unchanged
    assert [e for e in browser.errors if "403" not in e] == []  # the refusal is a 403
    browser.errors.clear()
    # a page of another origin cannot post (the browser guard's Origin rule)
    forged = httpx.post(
        f"{server.url}{UI}/do/clock-reset",
        data={"csrf": "x" * 40, "back": "/bench"},
        headers={"Origin": "http://evil.example"},
    )
    assert forged.status_code == 403

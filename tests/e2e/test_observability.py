"""``GET /metrics`` and the call log of a real server, under load: the metrics' counters equal
what the request journal holds, scraped while calls run; every log line is JSON, one per call
with the journal's request ids, and no secret (the admin token, secret access keys, SigV4
signatures, registration tokens) is anywhere in the server's output.

One strict server (``--auth sigv4``, an admin token) serves the module.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from marketmeter.observe.metrics import outcome_of
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.backend_agnostic]

ADMIN_TOKEN = "admin-token-Zq8dTT1x0bS3cr3t"
BAD_REGISTRATION_TOKEN = "regtoken-NOT-ISSUED-kj2h3k4j"
ADMIN_LINE = {"time", "level", "logger", "message", "method", "path", "status", "latency_ms"}
SECRETS = (ADMIN_TOKEN, "test-seller-secret", "wrong-secret-9f8e7d", BAD_REGISTRATION_TOKEN)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("observability") / "ledger.db"
    flags = ("--auth", "sigv4", "--admin-token", ADMIN_TOKEN, "--log-format", "json")
    process = ServerProcess(db, CATALOG, *flags, "--log-level", "info").start()
    try:
        yield process
    finally:
        process.stop()


def _call(client: Any, kind: int, now: datetime) -> None:
    try:
        if kind == 0:
            client.batch_meter_usage(
                ProductCode="prod-legacy",
                UsageRecords=[
                    {"Timestamp": now, "CustomerIdentifier": c, "Dimension": "users", "Quantity": 1}
                    for c in ("cust-alice", "cust-carol")  # carol's agreement is suspended
                ],
            )
        elif kind == 1:
            client.batch_meter_usage(
                ProductCode="prod-unknown",
                UsageRecords=[
                    {"Timestamp": now, "CustomerIdentifier": "x", "Dimension": "d", "Quantity": 1}
                ],
            )
        else:
            client.resolve_customer(RegistrationToken=BAD_REGISTRATION_TOKEN)
    except ClientError:
        pass


def _load(url: str, workers: int = 4, calls: int = 30) -> None:
    now = datetime.now(UTC)

    def work(worker: int) -> None:
        seller = make_client(url)
        forger = boto3.client(
            "meteringmarketplace",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIATESTSELLER000001",
            aws_secret_access_key="wrong-secret-9f8e7d",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        for n in range(calls):
            if n % 5 == 4:
                _call(forger, 0, now)  # a signature that does not verify
            else:
                _call(seller, (n + worker) % 3, now)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def scrape(http: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def test_metrics_equal_the_journal_and_logs_hold_no_secret(strict: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=strict.url, headers=headers, timeout=10) as http:
        assert httpx.get(f"{strict.url}/metrics").status_code == 401  # the admin token's
        scrapes: list[int] = []
        stop = threading.Event()

        def scraper() -> None:
            with httpx.Client(base_url=strict.url, headers=headers, timeout=10) as own:
                while not stop.is_set():
                    scrape(own)
                    scrapes.append(1)
                    time.sleep(0.01)

        watching = threading.Thread(target=scraper)
        watching.start()
        try:
            _load(strict.url)
        finally:
            stop.set()
            watching.join()
        assert scrapes, "no scrape ran under load"
        metrics = scrape(http)
        journal = http.get("/_marketmeter/journal", params={"limit": 1000}).json()["entries"]

    assert len(journal) == 4 * 30
    calls = Counter(
        (e["operation"] or "unknown", outcome_of(e["status"]), e["errorType"] or "none")
        for e in journal
    )
    counted = {
        (dict(k)["operation"], dict(k)["outcome"], dict(k)["error_type"]): v
        for k, v in metrics["marketmeter_calls_total"].items()
    }
    assert counted == calls
    assert len(calls) >= 4  # successes, and three kinds of errors
    records = Counter((e["operation"], v) for e in journal for v in e["verdicts"])
    assert {
        (dict(k)["operation"], dict(k)["status"]): v
        for k, v in metrics["marketmeter_records_total"].items()
    } == records
    assert records[("BatchMeterUsage", "CustomerNotSubscribed")] > 0
    per_operation = Counter(e["operation"] or "unknown" for e in journal)
    assert {
        dict(k)["operation"]: v
        for k, v in metrics["marketmeter_call_duration_seconds_count"].items()
    } == per_operation
    assert metrics["marketmeter_store_commit_seconds_count"][()] > 0
    assert () in metrics["marketmeter_store_write_queue_depth"]

    # a request's line is written once it is answered: wait for the last one's
    deadline = time.monotonic() + 10
    while '"path":"/_marketmeter/journal"' not in strict.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    output = strict.output()
    for secret in SECRETS:
        assert secret not in output
    assert re.search(r"Signature=[0-9a-f]{16}", output) is None
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line["logger"] == "marketmeter.calls"]
    assert sorted(line["request_id"] for line in logged) == sorted(e["requestId"] for e in journal)
    by_id = {e["requestId"]: e for e in journal}
    for line in logged:
        entry = by_id[line["request_id"]]
        assert line["level"] == "info"
        assert (line["operation"], line["status"], line["error_type"]) == (
            entry["operation"],
            entry["status"],
            entry["errorType"],
        )
        assert line["records"] == len(entry["verdicts"])
        assert line["caller"] == entry["accessKeyId"]
        assert line["journal_id"] == entry["id"]
        assert line["latency_ms"] >= 0
    requests = [line for line in lines if line["logger"] == "marketmeter.admin"]
    seen = {(line["method"], line["path"], line["status"]) for line in requests}
    assert ("GET", "/metrics", 401) in seen  # the scrape without the token
    assert ("GET", "/metrics", 200) in seen
    assert ("GET", "/_marketmeter/journal", 200) in seen
    assert all(set(line) == ADMIN_LINE for line in requests)

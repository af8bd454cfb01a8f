"""``marketmeter serve --workers 2`` end to end: the test bench's state is exact across the
processes. A control changed through one worker (the admin call answered by it, forwarded to
the coordinator) holds for the very next call answered by the other worker; each call's
``x-marketmeter-worker`` header proves which worker answered it, so no test passes by luck.
SIGTERM drains every process: whatever was acknowledged is in the ledger.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketmeter.catalog.loader import load_catalog_file
from marketmeter.store.sqlite import SQLiteStore
from tests.e2e.server_process import CATALOG, ServerProcess

pytestmark = pytest.mark.e2e

TARGET = "AWSMPMeteringService.BatchMeterUsage"
FROZEN = "2021-06-01T12:00:00Z"
FROZEN_EPOCH = 1622548800


class Pinned:
    """One keep-alive connection answered by each worker."""

    def __init__(self, server: ServerProcess, workers: int = 2) -> None:
        self.connections: dict[int, http.client.HTTPConnection] = {}
        spare: list[http.client.HTTPConnection] = []
        for _ in range(200):
            batch = [http.client.HTTPConnection("127.0.0.1", server.port) for _ in range(8)]
            for connection in batch:
                connection.connect()
            for connection in batch:
                connection.request("GET", "/_marketmeter/health")
                response = connection.getresponse()
                response.read()
                worker = int(response.headers["x-marketmeter-worker"])
                if worker not in self.connections:
                    self.connections[worker] = connection
                else:
                    spare.append(connection)
            if len(self.connections) == workers:
                break
        for connection in spare:
            connection.close()
        assert sorted(self.connections) == list(range(workers))

    def call(
        self,
        worker: int,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        connection = self.connections[worker]
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        assert response.headers["x-marketmeter-worker"] == str(worker)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, json.loads(raw) if raw else None

    def admin(self, worker: int, method: str, path: str, body: Any = None) -> Any:
        headers = {"content-type": "application/json"} if body is not None else {}
        status, _, answer = self.call(worker, method, "/_marketmeter" + path, body, headers)
        assert status == 200, answer
        return answer

    def batch(
        self, worker: int, customer: str, timestamp: int, product: str = "prod-legacy"
    ) -> tuple[int, dict[str, str], Any]:
        body = {
            "ProductCode": product,
            "UsageRecords": [
                {
                    "Timestamp": timestamp,
                    "CustomerIdentifier": customer,
                    "Dimension": "users",
                    "Quantity": 3,
                }
            ],
        }
        headers = {"x-amz-target": TARGET, "content-type": "application/x-amz-json-1.1"}
        return self.call(worker, "POST", "/", body, headers)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("workers") / "ledger.db", CATALOG, "--workers", "2"
    ).start()
    yield server
    assert server.stop() == 0


@pytest.fixture
def pinned(cluster: ServerProcess) -> Iterator[Pinned]:
    pins = Pinned(cluster)
    pins.admin(0, "POST", "/reset", {})
    pins.admin(0, "DELETE", "/clock")
    yield pins
    pins.close()


def now() -> int:
    return int(time.time())


def statuses(answer: Any) -> list[str]:
    return [result["Status"] for result in answer["Results"]]


def test_a_clock_moved_holds_on_the_other_worker_and_the_journal_has_its_call(
    pinned: Pinned,
) -> None:
    # out of the window on wall time: the coordinator's exact error, by way of worker 1
    status, _, answer = pinned.batch(1, "cust-alice", FROZEN_EPOCH - 3600)
    assert (status, answer["__type"]) == (400, "TimestampOutOfBoundsException")

    pinned.admin(0, "PUT", "/clock", {"time": FROZEN, "frozen": True})
    status, headers, answer = pinned.batch(1, "cust-alice", FROZEN_EPOCH - 3600)
    assert (status, statuses(answer)) == (200, ["Success"])

    journal = pinned.admin(0, "GET", "/journal?limit=1")
    (entry,) = journal["entries"]
    assert entry["requestId"] == headers["x-amzn-requestid"]
    assert (entry["operation"], entry["status"], entry["verdicts"]) == (
        "BatchMeterUsage",
        200,
        ["Success"],
    )
    assert entry["time"] == FROZEN
    billed = pinned.admin(1, "GET", "/usage?customer=cust-alice")["records"]
    assert [r["meteringRecordId"] for r in billed] == [answer["Results"][0]["MeteringRecordId"]]


def test_meter_usage_answered_by_a_worker_on_the_moved_clock_is_journaled_and_billed(
    pinned: Pinned,
) -> None:
    pinned.admin(0, "PUT", "/clock", {"time": FROZEN, "frozen": True})
    body = {
        "ProductCode": "prod-ami",
        "Timestamp": FROZEN_EPOCH - 60,
        "UsageDimension": "vcpu_hours",
        "UsageQuantity": 2,
    }
    headers = {
        "x-amz-target": "AWSMPMeteringService.MeterUsage",
        "content-type": "application/x-amz-json-1.1",
        # open auth reads the caller from the credential scope; the instance is the session
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIATESTALICE0000001/20210601/us-east-1/"
        "aws-marketplace/aws4_request, SignedHeaders=host;x-amz-target, Signature=0",
        "x-amz-security-token": "i-workers-test",
    }
    status, answered, answer = pinned.call(1, "POST", "/", body, headers)
    assert status == 200, answer

    (entry,) = pinned.admin(0, "GET", "/journal?limit=1")["entries"]
    assert (entry["requestId"], entry["operation"], entry["status"], entry["time"]) == (
        answered["x-amzn-requestid"],
        "MeterUsage",
        200,
        FROZEN,
    )
    billed = pinned.admin(0, "GET", "/usage?product=prod-ami")["records"]
    assert [r["meteringRecordId"] for r in billed] == [answer["MeteringRecordId"]]


def successes(pinned: Pinned, worker: int) -> tuple[float, float]:
    """BatchMeterUsage's successful calls and records so far, scraped through ``worker``."""
    connection = pinned.connections[worker]
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    assert (response.status, response.headers["x-marketmeter-worker"]) == (200, str(worker))
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    call = (("error_type", "none"), ("operation", "BatchMeterUsage"), ("outcome", "success"))
    record = (("operation", "BatchMeterUsage"), ("status", "Success"))
    return (
        found.get(("marketmeter_calls_total", call), 0.0),
        found.get(("marketmeter_records_total", record), 0.0),
    )


def test_the_metrics_count_the_calls_of_every_worker_whichever_answers_the_scrape(
    pinned: Pinned,
) -> None:
    before = successes(pinned, 0)
    for worker, customer, hours_ago in (
        (0, "cust-alice", 0),
        (1, "cust-bob", 0),
        (1, "cust-alice", 1),
    ):
        status, _, answer = pinned.batch(worker, customer, now() - hours_ago * 3600)
        assert (status, statuses(answer)) == (200, ["Success"])
    after = successes(pinned, 1)
    assert (after[0] - before[0], after[1] - before[1]) == (3.0, 3.0)


def test_a_fault_rule_added_on_one_worker_fails_the_next_call_on_the_other(
    pinned: Pinned,
) -> None:
    rule = {"operation": "BatchMeterUsage", "error": {"code": "ThrottlingException"}}
    pinned.admin(0, "PATCH", "/faults", [rule])
    status, _, answer = pinned.batch(1, "cust-alice", now())
    assert (status, answer["__type"]) == (400, "ThrottlingException")

    pinned.admin(1, "POST", "/faults", [])
    status, _, answer = pinned.batch(0, "cust-alice", now())
    assert (status, statuses(answer)) == (200, ["Success"])


def test_a_quota_set_on_one_worker_throttles_the_other(pinned: Pinned) -> None:
    pinned.admin(1, "PUT", "/faults/quota", {"profile": "custom", "rates": {"BatchMeterUsage": 1}})
    status, _, answer = pinned.batch(0, "cust-alice", now())
    assert (status, statuses(answer)) == (200, ["Success"])
    status, _, answer = pinned.batch(0, "cust-bob", now())
    assert (status, answer["__type"]) == (400, "ThrottlingException")

    pinned.admin(1, "PUT", "/faults/quota", {"profile": "off"})
    status, _, answer = pinned.batch(0, "cust-bob", now())
    assert (status, statuses(answer)) == (200, ["Success"])


def test_a_catalog_applied_on_one_worker_holds_on_the_other(pinned: Pinned) -> None:
    status, _, answer = pinned.batch(1, "cust-dave", now())
    assert (status, statuses(answer)) == (200, ["CustomerNotSubscribed"])

    document = b'agreements:\n  - {buyer: "555566667777", product: prod-legacy}\n'
    status, _, applied = pinned.call(
        0,
        "POST",
        "/_marketmeter/catalog?source=workers-test",
        document,
        {"content-type": "application/yaml"},
    )
    assert status == 200, applied
    status, _, answer = pinned.batch(1, "cust-dave", now())
    assert (status, statuses(answer)) == (200, ["Success"])


def test_workers_forked_with_the_old_catalog_meter_against_the_one_applied_at_start(
    tmp_path: Path,
) -> None:
    """``serve`` reads the ledger's catalog before it forks and applies ``--catalog`` after:
    a worker started with the catalog read first answers its very first call by the one
    applied."""
    ledger = tmp_path / "ledger.db"
    first = SQLiteStore(ledger)  # the ledger as a server left it: the first catalog in it
    try:
        first.apply_catalog_now(load_catalog_file(CATALOG))
    finally:
        first.close_now()
    changed = tmp_path / "changed.yaml"
    changed.write_text(CATALOG.read_text() + '  - {buyer: "555566667777", product: prod-legacy}\n')
    server = ServerProcess(ledger, changed, "--workers", "2").start()
    try:
        pins = Pinned(server)
        try:
            for worker in (0, 1):
                status, _, answer = pins.batch(worker, "cust-dave", now() - worker)
                assert (status, statuses(answer)) == (200, ["Success"])
        finally:
            pins.close()
    finally:
        assert server.stop() == 0


def drain_catalog(buyers: int) -> str:
    """One SaaS product of ten dimensions, ``buyers`` buyers subscribed to it."""
    lines = [
        "sellers:",
        '  - {account_id: "111122223333"}',
        "products:",
        '  - {product_code: drain, seller: "111122223333", kind: saas, dimensions: '
        f"[{', '.join(f'd{d}' for d in range(10))}]}}",
        "buyers:",
        *(
            f'  - {{account_id: "{200000000000 + b}", customer_identifier: c{b}}}'
            for b in range(buyers)
        ),
        "agreements:",
        *(f'  - {{buyer: "{200000000000 + b}", product: drain}}' for b in range(buyers)),
    ]
    return "\n".join(lines) + "\n"


def test_sigterm_drains_every_process_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    buyers, hours = 400, 5
    catalog = tmp_path / "drain.yaml"
    catalog.write_text(drain_catalog(buyers))
    server = ServerProcess(tmp_path / "ledger.db", catalog, "--workers", "2").start()
    acknowledged: list[str] = []
    keys = iter(range(buyers * 10 * hours))
    taking = threading.Lock()
    stop = threading.Event()
    hour = now() // 3600 * 3600

    def batch() -> bytes:
        records = []
        with taking:
            taken = [key for key, _ in zip(keys, range(25), strict=False)]
            if len(taken) < 25:
                stop.set()  # every key sent
            for key in taken:
                customer, dimension, back = key % buyers, key // buyers % 10, key // buyers // 10
                records.append(
                    {
                        "Timestamp": hour - back * 3600,
                        "CustomerIdentifier": f"c{customer}",
                        "Dimension": f"d{dimension}",
                        "Quantity": 1,
                    }
                )
        return json.dumps({"ProductCode": "drain", "UsageRecords": records}).encode()

    def load() -> None:
        while not stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                while not stop.is_set():
                    connection.request("POST", "/", batch(), {"x-amz-target": TARGET})
                    answer = json.loads(connection.getresponse().read())
                    for result in answer.get("Results", ()):
                        assert result["Status"] == "Success"
                        acknowledged.append(result["MeteringRecordId"])
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.01)
            finally:
                connection.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert server.stop(signal.SIGTERM) == 0
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 25  # at least one batch answered before the stop

    server.extra = ("--workers", "1")
    server.start()
    try:
        usage = httpx.get(f"{server.url}/_marketmeter/usage", params={"limit": 100000})
        records = usage.json()["records"]
    finally:
        server.stop()
    assert set(acknowledged) <= {r["meteringRecordId"] for r in records}

"""The subscription lifecycle end to end: a real ``marketmeter serve`` process, the real CLI,
boto3, and a real local webhook receiver (``http.server`` on 127.0.0.1) that the server POSTs
its SNS notifications and EventBridge events to."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from marketmeter.catalog.model import product_id_for
from marketmeter.lifecycle.messages import public_offer_id
from tests.e2e.cli_runner import mm
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess
from tests.ports import free_port


class Receiver:
    """A webhook receiver: records every POST; ``script[path]`` lists the statuses to answer
    in turn (then 200); ``slow`` paths wait ``delay`` seconds before answering."""

    def __init__(self, delay: float = 2.0) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.script: dict[str, list[int]] = {}
        self.slow: set[str] = set()
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path in receiver.slow:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append((self.path, headers, json.loads(body)))
                    statuses = receiver.script.get(self.path, [])
                    status = statuses.pop(0) if statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for where, _, body in self.received if where == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.bodies(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.bodies(path))} POSTs, expected {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _catalog(path: Path, receiver: Receiver, dead_url: str) -> Path:
    products = [
        ("prod-legacy", "legacy", [f"{receiver.url}/legacy"]),
        ("prod-ca", "concurrent-agreements", [f"{receiver.url}/ca"]),
        ("prod-flaky", "legacy", [f"{receiver.url}/flaky"]),
        ("prod-dead", "legacy", [dead_url, f"{receiver.url}/slow"]),
    ]
    lines = [
        "sellers:",
        '  - account_id: "111122223333"',
        "    access_keys:",
        "      - {access_key_id: AKIATESTSELLER000001, secret_access_key: test-seller-secret}",
        "products:",
    ]
    for code, integration, urls in products:
        lines += [
            f"  - product_code: {code}",
            '    seller: "111122223333"',
            "    kind: saas",
            f"    integration: {integration}",
            "    dimensions: [users]",
            f"    notification_urls: {json.dumps(urls)}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def served(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerProcess]:
    # fast retries: 0.2 s, 0.4 s; 3 attempts; a POST gives up after 1 s
    monkeypatch.setenv("MARKETMETER_WEBHOOK_RETRY_BASE", "0.2")
    monkeypatch.setenv("MARKETMETER_WEBHOOK_ATTEMPTS", "3")
    monkeypatch.setenv("MARKETMETER_WEBHOOK_TIMEOUT", "1")
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    catalog = _catalog(tmp_path / "catalog.yaml", receiver, dead)
    process = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        yield process
    finally:
        process.stop()


def cli(server: ServerProcess, *args: str) -> Any:
    done = mm(*args, "--json", cwd=server.db.parent, env={"MARKETMETER_ENDPOINT": server.url})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def message_of(envelope: dict[str, Any]) -> dict[str, Any]:
    assert envelope["Type"] == "Notification"
    return dict(json.loads(envelope["Message"]))


def bill(server: ServerProcess, product: str, customer: str, quantity: int = 1) -> str:
    """One record for ``customer`` (a CustomerIdentifier) now; its status. Stamped now, not a
    minute back: in an hour's first minute that minute is the last hour, before the period a
    subscription made now starts in (a fresh-clone run at 09:00 failed three tests so)."""
    client = make_client(server.url)
    response = client.batch_meter_usage(
        ProductCode=product,
        UsageRecords=[
            {
                "Timestamp": datetime.fromtimestamp(int(time.time()), UTC),
                "CustomerIdentifier": customer,
                "Dimension": "users",
                "Quantity": quantity,
            }
        ],
    )
    return str(response["Results"][0]["Status"])


def test_unsubscribe_is_pending_then_succeeds_when_the_service_clock_passes_the_delay(
    served: ServerProcess, receiver: Receiver
) -> None:
    subscribed = cli(
        served, "agreements", "subscribe", "--product", "prod-legacy", "--buyer", "121212121212"
    )
    agreement = subscribed["agreement"]
    customer = agreement["customerIdentifier"]
    [first] = receiver.wait_for("/legacy", 1)
    assert message_of(first) == {
        "action": "subscribe-success",
        "customer-identifier": customer,
        "product-code": "prod-legacy",
        "offer-identifier": public_offer_id("prod-legacy"),  # the subscription named none
        "isFreeTrialTermPresent": "false",
    }
    assert first["TopicArn"] == (
        "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prod-legacy"
    )
    headers = receiver.received[0][1]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == first["MessageId"]
    assert bill(served, "prod-legacy", customer, 1) == "Success"

    pending = cli(served, "agreements", "unsubscribe", agreement["agreementId"])
    assert pending["agreement"]["state"] == "unsubscribe-pending"
    assert message_of(receiver.wait_for("/legacy", 2)[1])["action"] == "unsubscribe-pending"
    assert bill(served, "prod-legacy", customer, 1) == "Success"  # within the pending window

    mm("clock", "advance", "61m", cwd=served.db.parent, env={"MARKETMETER_ENDPOINT": served.url})
    third = receiver.wait_for("/legacy", 3)[2]
    assert message_of(third) == {
        "action": "unsubscribe-success",
        "customer-identifier": customer,
        "product-code": "prod-legacy",
        "isFreeTrialTermPresent": "false",
    }
    assert bill(served, "prod-legacy", customer, 2) == "CustomerNotSubscribed"
    shown = cli(served, "agreements", "show", agreement["licenseArn"])
    assert (shown["state"], shown["storedState"]) == ("unsubscribed", "unsubscribed")
    logged = cli(served, "events", "--product", "prod-legacy")["events"]
    assert [e["action"] for e in logged] == [
        "subscribe-success",
        "unsubscribe-pending",
        "unsubscribe-success",
    ]
    assert [d["status"] for e in logged for d in e["deliveries"]] == ["delivered"] * 3


def test_suspend_and_resubscribe_stop_and_restart_billing(
    served: ServerProcess, receiver: Receiver
) -> None:
    agreement = cli(
        served, "agreements", "subscribe", "--product", "prod-legacy", "--buyer", "131313131313"
    )["agreement"]
    customer = agreement["customerIdentifier"]
    suspended = cli(served, "agreements", "suspend", agreement["agreementId"])
    assert suspended["agreement"]["state"] == "suspended"
    assert bill(served, "prod-legacy", customer) == "CustomerNotSubscribed"
    refused = mm(
        "agreements", "unsubscribe", agreement["agreementId"],
        cwd=served.db.parent, env={"MARKETMETER_ENDPOINT": served.url},
    )  # fmt: skip
    assert refused.returncode == 1
    assert (
        f"Error: agreement: agreement {agreement['agreementId']} is suspended; only a subscribed "
        "agreement can be unsubscribed"
    ) in refused.stderr
    cli(served, "agreements", "resubscribe", agreement["agreementId"])
    assert bill(served, "prod-legacy", customer) == "Success"
    actions = [message_of(body)["action"] for body in receiver.wait_for("/legacy", 3)]
    assert actions == ["subscribe-success", "unsubscribe-success", "subscribe-success"]


def test_resubscribing_while_unsubscribe_pending_sends_subscribe_success_instead(
    served: ServerProcess, receiver: Receiver
) -> None:
    """AWS: a buyer who re-subscribes before unsubscribe-success gets subscribe-success, and
    unsubscribe-success is not sent
    (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-notification.html)."""
    agreement = cli(
        served, "agreements", "subscribe", "--product", "prod-legacy", "--buyer", "171717171717"
    )["agreement"]
    customer = agreement["customerIdentifier"]
    cli(served, "agreements", "unsubscribe", agreement["agreementId"])
    resumed = cli(served, "agreements", "resubscribe", agreement["agreementId"])
    assert resumed["agreement"]["state"] == "subscribed"
    mm("clock", "advance", "61m", cwd=served.db.parent, env={"MARKETMETER_ENDPOINT": served.url})
    time.sleep(1.0)  # the ticker (every 0.25 s) had its rounds past the old end: nothing to end
    assert bill(served, "prod-legacy", customer) == "Success"
    logged = cli(served, "events", "--product", "prod-legacy", "--buyer", "171717171717")
    assert [e["action"] for e in logged["events"]] == [
        "subscribe-success",
        "unsubscribe-pending",
        "resubscribe",
    ]
    actions = [message_of(body)["action"] for body in receiver.wait_for("/legacy", 3)]
    assert actions == ["subscribe-success", "unsubscribe-pending", "subscribe-success"]


def test_a_concurrent_agreements_product_gets_eventbridge_events(
    served: ServerProcess, receiver: Receiver
) -> None:
    agreement = cli(
        served, "agreements", "subscribe", "--product", "prod-ca", "--buyer", "141414141414"
    )["agreement"]
    cli(served, "agreements", "update", agreement["agreementId"])
    created, updated = receiver.wait_for("/ca", 2)
    assert {k: created[k] for k in ("version", "detail-type", "source", "account", "region")} == {
        "version": "0",
        "detail-type": "Purchase Agreement Created - Proposer",
        "source": "aws.agreement-marketplace",
        "account": "111122223333",
        "region": "us-east-1",
    }
    resource = f"arn:aws:aws-marketplace::aws:agreement:{agreement['agreementId']}"
    assert created["resources"] == [resource]
    assert created["detail"]["agreement"]["id"] == agreement["agreementId"]
    assert created["detail"]["acceptor"] == {"accountId": "141414141414"}
    assert "licenseArns" not in created["detail"]
    # the License event names the license in AWS's form (issuer account 294406891311)
    assert updated["detail-type"] == "License Updated - Manufacturer"
    assert updated["resources"] == [resource]
    assert updated["detail"]["license"] == {"arn": agreement["licenseArn"]}
    assert agreement["licenseArn"].startswith("arn:aws:license-manager::294406891311:license:l-")
    assert updated["detail"]["product"] == {"code": "prod-ca", "id": product_id_for("prod-ca")}


def test_a_webhook_failing_twice_gets_three_attempts(
    served: ServerProcess, receiver: Receiver
) -> None:
    receiver.script["/flaky"] = [500, 500]
    cli(served, "agreements", "subscribe", "--product", "prod-flaky", "--buyer", "151515151515")
    receiver.wait_for("/flaky", 3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        [event] = cli(served, "events", "--product", "prod-flaky")["events"]
        if event["deliveries"][0]["status"] == "delivered":
            break
        time.sleep(0.05)
    [delivery] = event["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert [a["statusCode"] for a in delivery["history"]] == [500, 500, 200]


@pytest.mark.timing
def test_a_dead_or_slow_webhook_does_not_slow_metering(
    served: ServerProcess, receiver: Receiver
) -> None:
    receiver.slow.add("/slow")
    receiver.script["/slow"] = [500, 500, 500]
    customer = cli(
        served, "agreements", "subscribe", "--product", "prod-dead", "--buyer", "161616161616"
    )["agreement"]["customerIdentifier"]
    client = make_client(served.url)
    slowest = 0.0
    for quantity in range(1, 21):
        started = time.monotonic()
        client.batch_meter_usage(
            ProductCode="prod-dead",
            UsageRecords=[
                {
                    "Timestamp": datetime.fromtimestamp(int(time.time()) - 60 - quantity, UTC),
                    "CustomerIdentifier": customer,
                    "Dimension": "users",
                    "Quantity": quantity,
                }
            ],
        )
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5  # while the webhooks hang (1 s) or refuse, retried in the background
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        [event] = cli(served, "events", "--product", "prod-dead")["events"]
        if all(d["status"] == "failed" for d in event["deliveries"]):
            break
        time.sleep(0.1)
    assert [(d["status"], d["attempts"]) for d in event["deliveries"]] == [
        ("failed", 3),
        ("failed", 3),
    ]

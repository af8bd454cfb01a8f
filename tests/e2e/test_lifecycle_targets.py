"""Notifications delivered into a real SNS, SQS and EventBridge: moto's server on 127.0.0.1 (one
per module), ``marketmeter serve`` processes, and the consumer's view: the messages read from
SQS queues, subscribed to AWS's topics, targeted directly, or behind an EventBridge rule.

Each test uses products of its own (so their topics, queues and rules are its own) on the one
moto server."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from marketmeter.catalog.model import product_id_for
from marketmeter.lifecycle.messages import public_offer_id
from marketmeter.lifecycle.sns_http import string_to_sign
from tests.e2e.buyers import ClockControl, admin
from tests.e2e.cli_runner import mm
from tests.e2e.conftest import make_client
from tests.e2e.server_process import ServerProcess
from tests.ports import free_port

pytestmark = pytest.mark.e2e

SELLER = "111122223333"
MOTO_ACCOUNT = "123456789012"  # moto's default account: the topics' and the bus's owner
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Moto:
    """moto's server as a process, with boto3 clients of its SNS, SQS and EventBridge."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Moto:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("moto's server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", **KEYS)

    def queue(self, name: str) -> tuple[str, str]:
        """A new queue: its URL and ARN."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(url), str(arn["QueueArn"])

    def subscribe_queue(self, topic: str, queue_arn: str) -> str:
        """Subscribe a queue to a topic (created if missing) as a seller does; the topic ARN."""
        sns = self.client("sns")
        arn = str(sns.create_topic(Name=topic)["TopicArn"])
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        return arn

    def rule_to_queue(self, name: str, pattern: dict[str, Any], queue_arn: str) -> None:
        events = self.client("events")
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def read(self, queue_url: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Every message a consumer reads from the queue, waiting for ``count`` (then a
        moment more, so that a duplicate would show), as JSON bodies (or strings)."""
        sqs = self.client("sqs")
        bodies: list[Any] = []
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            for message in got.get("Messages", []):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                try:
                    bodies.append(json.loads(message["Body"]))
                except ValueError:
                    bodies.append(message["Body"])
            if len(bodies) >= count:
                settle = settle or time.monotonic() + 0.3
                if time.monotonic() >= settle:
                    return bodies
            time.sleep(0.05)
        raise AssertionError(f"{queue_url}: read {len(bodies)} messages, expected {count}")


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # the servers started by a test inherit: retries after 0.2 s, 0.4 s, ... at most 0.5 s
    monkeypatch.setenv("MARKETMETER_WEBHOOK_RETRY_BASE", "0.2")
    monkeypatch.setenv("MARKETMETER_WEBHOOK_RETRY_MAX", "0.5")
    monkeypatch.setenv("MARKETMETER_WEBHOOK_ATTEMPTS", "200")
    monkeypatch.setenv("MARKETMETER_WEBHOOK_TIMEOUT", "1")


def _catalog(path: Path, products: list[tuple[str, str, list[dict[str, Any]]]]) -> Path:
    document = {
        "sellers": [{"account_id": SELLER}],
        "products": [
            {
                "product_code": code,
                "seller": SELLER,
                "kind": "saas",
                "integration": integration,
                "dimensions": ["users"],
                "notification_targets": targets,
            }
            for code, integration, targets in products
        ],
    }
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


def _target(moto: Moto, name: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "endpoint_url": moto.url,
        "access_key_id": "testing",
        "secret_access_key": "testing",
        **fields,
    }


def call(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    status, answer = admin(server.url, method, f"/_marketmeter{path}", body)
    assert status in (200, 201), answer
    return answer


def subscribe(server: ServerProcess, product: str, buyer: str) -> dict[str, Any]:
    body = {"productCode": product, "buyerAccountId": buyer}
    return dict(call(server, "POST", "/agreements", body)["agreement"])


def transition(server: ServerProcess, agreement: dict[str, Any], verb: str) -> None:
    call(server, "POST", f"/agreements/{agreement['agreementId']}/{verb}", {})


def message(customer: str, product: str, action: str) -> dict[str, str]:
    """An SNS message as AWS sends it: a subscribe message names the offer (the product's
    public offer: these subscriptions name none)."""
    found = {"action": action, "customer-identifier": customer, "product-code": product}
    if action in ("subscribe-success", "subscribe-fail"):
        found["offer-identifier"] = public_offer_id(product)
    if action != "entitlement-updated":
        found["isFreeTrialTermPresent"] = "false"
    return found


def by_customer(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """SNS messages per customer, in the order read."""
    found: dict[str, list[dict[str, str]]] = {}
    for one in messages:
        found.setdefault(one["customer-identifier"], []).append(one)
    return found


def wait_delivered(server: ServerProcess, product: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        found = call(server, "GET", f"/deliveries?product={product}&limit=1000")["deliveries"]
        if sum(d["status"] == "delivered" for d in found) >= count:
            return list(found)
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps(found, indent=1))
        time.sleep(0.05)


ENVELOPE_KEYS = [
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
]


def test_a_legacy_products_lifecycle_reaches_queues_through_sns_and_straight(
    tmp_path: Path, moto: Moto
) -> None:
    code = "legacy-a"
    sub_url, sub_arn = moto.queue("legacy-a-subscriptions")
    ent_url, ent_arn = moto.queue("legacy-a-entitlements")
    direct_url, _ = moto.queue("legacy-a-direct")
    raw_url, _ = moto.queue("legacy-a-raw")
    sub_topic = moto.subscribe_queue(f"aws-mp-subscription-notification-{code}", sub_arn)
    ent_topic = moto.subscribe_queue(f"aws-mp-entitlement-notification-{code}", ent_arn)
    targets = [
        _target(moto, "topics", "sns"),
        _target(moto, "direct", "sqs", queue_url=direct_url),
        _target(moto, "raw", "sqs", queue_url=raw_url, raw_delivery=True),
    ]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        agreement = subscribe(server, code, "212121212121")
        customer = agreement["customerIdentifier"]
        transition(server, agreement, "suspend")
        transition(server, agreement, "resubscribe")
        transition(server, agreement, "entitlement-update")
        transition(server, agreement, "unsubscribe")
        ClockControl(server.url).advance(3660)  # the unsubscribe delay, on the service clock
        call(
            server,
            "POST",
            "/subscribe-fail",
            {"productCode": code, "buyerAccountId": "313131313131"},
        )
        subscriptions = moto.read(sub_url, 6)
        entitlements = moto.read(ent_url, 1)
        direct = moto.read(direct_url, 7)
        raw = moto.read(raw_url, 7)
        logged = call(server, "GET", f"/events?product={code}")["events"]
        failed = call(server, "GET", f"/events?product={code}&action=subscribe-fail")["events"]
    finally:
        server.stop()
    failed_customer = json.loads(failed[0]["message"]["Message"])["customer-identifier"]
    expected = [
        message(customer, code, "subscribe-success"),
        message(customer, code, "unsubscribe-success"),  # suspended
        message(customer, code, "subscribe-success"),  # resubscribed
        message(customer, code, "unsubscribe-pending"),
        message(customer, code, "unsubscribe-success"),
    ]
    # through SNS: the emulator's own envelope, AWS's Message; each customer's in order
    assert by_customer([json.loads(body["Message"]) for body in subscriptions]) == {
        customer: expected,
        failed_customer: [message(failed_customer, code, "subscribe-fail")],
    }
    assert [sorted(body) for body in subscriptions] == [sorted(ENVELOPE_KEYS)] * 6  # moto's order
    assert {body["TopicArn"] for body in subscriptions} == {sub_topic}
    assert (
        sub_topic == f"arn:aws:sns:us-east-1:{MOTO_ACCOUNT}:aws-mp-subscription-notification-{code}"
    )
    assert [json.loads(body["Message"]) for body in entitlements] == [
        message(customer, code, "entitlement-updated")
    ]
    assert entitlements[0]["TopicArn"] == ent_topic
    # straight to SQS: the envelope as AWS's SNS hands it to a queue, in the order it happened
    ours = [event["message"] for event in logged]
    assert sorted(direct, key=ours.index) == ours  # exactly what was logged, each once
    assert [list(body) for body in direct] == [ENVELOPE_KEYS] * 7
    assert by_customer([json.loads(body["Message"]) for body in direct])[customer] == [
        *expected[:3],
        message(customer, code, "entitlement-updated"),
        *expected[3:],
    ]
    assert ours[3]["TopicArn"] == (
        f"arn:aws:sns:us-east-1:287250355862:aws-mp-entitlement-notification-{code}"
    )
    assert by_customer(raw) == by_customer([json.loads(body["Message"]) for body in direct])


def test_a_concurrent_agreements_products_events_reach_a_queue_through_a_rule(
    tmp_path: Path, moto: Moto
) -> None:
    code = "ca-b"
    queue_url, queue_arn = moto.queue("ca-b-events")
    moto.rule_to_queue(
        "ca-b-rule",
        {"source": ["aws.agreement-marketplace"], "detail": {"product": {"code": [code]}}},
        queue_arn,
    )
    everything_url, everything_arn = moto.queue("ca-b-all")
    moto.rule_to_queue(
        "ca-b-all",
        {"source": ["aws.agreement-marketplace"], "account": [MOTO_ACCOUNT]},
        everything_arn,
    )
    targets = [_target(moto, "bus", "eventbridge")]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "concurrent-agreements", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    buyer = "414141414141"
    try:
        agreement = subscribe(server, code, buyer)
        transition(server, agreement, "suspend")
        transition(server, agreement, "resubscribe")
        transition(server, agreement, "entitlement-update")
        transition(server, agreement, "unsubscribe")
        ClockControl(server.url).advance(3660)
        call(
            server,
            "POST",
            "/subscribe-fail",
            {"productCode": code, "buyerAccountId": "515151515151"},
        )
        licenses = moto.read(queue_url, 4)  # only License events carry product.code
        events = moto.read(everything_url, 6)
        logged = call(server, "GET", f"/events?product={code}")["events"]
    finally:
        server.stop()
    agreement_id, license_arn = agreement["agreementId"], agreement["licenseArn"]
    assert [e["detail-type"] for e in events] == [
        "Purchase Agreement Created - Proposer",
        "License Deprovisioned - Manufacturer",  # suspended
        "License Updated - Manufacturer",  # resumed
        "License Updated - Manufacturer",  # entitlement update
        "Purchase Agreement Ended - Proposer",
        "License Deprovisioned - Manufacturer",
    ]
    sent = [e["message"] for e in logged if e["channel"] == "eventbridge"]
    for delivered, ours in zip(events, sent, strict=True):
        # the envelope as EventBridge delivers it (moto's leaves out "account")
        assert sorted([*delivered, "account"]) == sorted(ours)
        assert delivered["source"] == "aws.agreement-marketplace"
        assert delivered["resources"] == [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"]
        assert delivered["region"] == "us-east-1"
        assert delivered["version"] == "0"
        assert delivered["time"] == ours["time"]
        assert delivered["detail"] == ours["detail"]
    assert events[3]["detail"] == {
        "requestId": sent[3]["detail"]["requestId"],
        "catalog": "AWSMarketplace",
        "agreement": {"id": agreement_id},
        "product": {"code": code, "id": product_id_for(code)},
        "license": {"arn": license_arn},
        "acceptor": {"accountId": buyer},
        "proposer": {"accountId": SELLER},
        "offer": {"id": public_offer_id(code)},  # the subscription named none
    }
    assert [e["detail-type"] for e in licenses] == [
        "License Deprovisioned - Manufacturer",
        "License Updated - Manufacturer",
        "License Updated - Manufacturer",
        "License Deprovisioned - Manufacturer",
    ]
    [failed] = [e for e in logged if e["action"] == "subscribe-fail"]
    assert (failed["channel"], failed["deliveries"]) == ("none", [])  # logged, sent nowhere


@pytest.mark.backend_agnostic  # the log's once-only on PostgreSQL: tests/store
def test_a_contracts_end_on_the_clock_reaches_the_queues_and_the_apis(
    tmp_path: Path, moto: Moto
) -> None:
    """A renewal date set, the clock moved past it: the legacy product's entitlement topic gets
    entitlement-updated; the concurrent agreement's rule gets Ended (EXPIRED), then, the hour
    for final records later, License Deprovisioned; the APIs say EXPIRED and grant nothing."""
    legacy, ca = "exp-legacy", "exp-ca"
    ent_url, ent_arn = moto.queue("exp-legacy-entitlements")
    moto.subscribe_queue(f"aws-mp-entitlement-notification-{legacy}", ent_arn)
    events_url, events_arn = moto.queue("exp-ca-events")
    buyer = "616161616161"
    moto.rule_to_queue(
        "exp-ca-rule",
        {"source": ["aws.agreement-marketplace"], "detail": {"acceptor": {"accountId": [buyer]}}},
        events_arn,
    )
    catalog = _catalog(
        tmp_path / "catalog.yaml",
        [
            (legacy, "legacy", [_target(moto, "topics", "sns")]),
            (ca, "concurrent-agreements", [_target(moto, "bus", "eventbridge")]),
        ],
    )
    start = 1_800_000_000  # 2027-01-15T08:00:00Z
    end = start + 86_400
    renewal = {"endsAt": "2027-01-16T08:00:00Z"}
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        clock = ClockControl(server.url)
        clock.set(start)
        mine = subscribe(server, legacy, "717171717171")
        theirs = subscribe(server, ca, buyer)
        for agreement in (mine, theirs):
            path = f"/agreements/{agreement['agreementId']}/entitlement-update"
            call(server, "POST", path, renewal)
        clock.advance(86_399)
        assert call(server, "GET", f"/events?product={ca}")["events"][-1]["action"] == (
            "entitlement-updated"
        )
        clock.advance(1)  # the end
        entitlements = moto.read(ent_url, 2)
        before_deprovision = moto.read(events_url, 4)
        agreements = boto3.client(
            "marketplace-agreement", endpoint_url=server.url, region_name="us-east-1", **KEYS
        )
        described = agreements.describe_agreement(agreementId=theirs["agreementId"])
        granted = boto3.client(
            "marketplace-entitlement", endpoint_url=server.url, region_name="us-east-1", **KEYS
        ).get_entitlements(ProductCode=ca, Filter={"CUSTOMER_AWS_ACCOUNT_ID": [buyer]})
        clock.advance(3600)  # the hour for final records
        [deprovisioned] = moto.read(events_url, 1)
        logged = call(server, "GET", "/events?action=expire")["events"]
    finally:
        server.stop()
    customer = mine["customerIdentifier"]
    assert [json.loads(body["Message"]) for body in entitlements] == [
        message(customer, legacy, "entitlement-updated"),  # the renewal date set
        message(customer, legacy, "entitlement-updated"),  # the end
    ]
    assert [e["detail-type"] for e in before_deprovision] == [
        "Purchase Agreement Created - Proposer",
        "Purchase Agreement Amended - Proposer",  # the renewal date set
        "License Updated - Manufacturer",
        "Purchase Agreement Ended - Proposer",
    ]
    assert before_deprovision[1]["detail"]["agreement"]["endTime"] == "2027-01-16T08:00:00Z"
    ended = before_deprovision[3]
    assert ended["time"] == "2027-01-16T08:00:00Z"
    assert ended["detail"]["agreement"] == {"id": theirs["agreementId"], "status": "EXPIRED"}
    assert (described["status"], described["endTime"].timestamp()) == ("EXPIRED", end)
    assert "Entitlements" not in granted
    assert deprovisioned["detail-type"] == "License Deprovisioned - Manufacturer"
    assert deprovisioned["time"] == "2027-01-16T09:00:00Z"
    assert deprovisioned["detail"]["license"] == {"arn": theirs["licenseArn"]}
    assert len(logged) == 2
    expired = {e["productCode"]: e for e in logged}  # one commit, by LicenseArn
    assert sorted((code, e["occurredAt"]) for code, e in expired.items()) == [
        (ca, "2027-01-16T08:00:00Z"),
        (legacy, "2027-01-16T08:00:00Z"),
    ]
    assert expired[legacy]["message"]["Timestamp"] == "2027-01-16T08:00:00.000Z"  # not moto's


def _actions(bodies: list[dict[str, Any]]) -> list[str]:
    return [json.loads(body["Message"])["action"] for body in bodies]


def test_a_target_down_across_a_kill_9_gets_every_message_once_in_order_when_it_is_up(
    tmp_path: Path,
) -> None:
    later = Moto()  # the seller's SQS: not running yet
    queue_url = f"{later.url}/{MOTO_ACCOUNT}/down-c"
    code = "legacy-c"
    targets = [{**_target(later, "queue", "sqs", queue_url=queue_url)}]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        agreement = subscribe(server, code, "616161616161")
        transition(server, agreement, "suspend")
        transition(server, agreement, "resubscribe")
        deadline = time.monotonic() + 10
        while True:  # the first is retried: refused connections, in the event log
            [first] = call(server, "GET", f"/deliveries?product={code}&limit=1")["deliveries"]
            if first["attempts"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert first["status"] == "pending"
        assert "Could not connect to the endpoint URL" in first["history"][0]["error"]
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        later.start()
        later.queue("down-c")
        server.start()
        bodies = later.read(queue_url, 3)
        delivered = wait_delivered(server, code, 3)
    finally:
        server.stop()
        later.stop()
    assert _actions(bodies) == ["subscribe-success", "unsubscribe-success", "subscribe-success"]
    assert len({body["MessageId"] for body in bodies}) == 3  # no duplicate
    assert [d["status"] for d in delivered] == ["delivered"] * 3
    assert delivered[0]["attempts"] >= 3
    assert delivered[0]["history"][-1] == {
        "attempt": delivered[0]["attempts"],
        "attemptedAt": delivered[0]["deliveredAt"],
        "statusCode": 200,
        "error": None,
    }


def test_bench_hooks_pause_resume_fail_and_redeliver_a_target(tmp_path: Path, moto: Moto) -> None:
    code = "legacy-d"
    queue_url, _ = moto.queue("legacy-d")
    targets = [_target(moto, "queue", "sqs", queue_url=queue_url, raw_delivery=True)]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    env = {"MARKETMETER_ENDPOINT": server.url}
    try:
        paused = mm("deliveries", "pause", code, "queue", cwd=tmp_path, env=env)
        assert paused.stdout == (
            f"{code}  queue  sqs  pending 0, delivered 0, failed 0  paused\n"
        ), paused.stderr
        subscribe(server, code, "717171717171")
        time.sleep(0.5)  # two polls of the deliverer: nothing goes out
        [held] = call(server, "GET", f"/deliveries?product={code}&status=pending")["deliveries"]
        assert (held["target"], held["attempts"]) == ("queue", 0)
        resumed = call(server, "POST", f"/products/{code}/targets/queue/resume")
        assert resumed["paused"] is False
        [first] = moto.read(queue_url, 1)
        assert first["action"] == "subscribe-success"

        rule = {"kind": "delivery-failure", "productCode": code, "target": "queue", "times": 2}
        call(server, "POST", "/faults", rule)
        subscribe(server, code, "818181818181")
        [second] = moto.read(queue_url, 1)
        assert (second["action"], second["product-code"]) == ("subscribe-success", code)
        [flaky] = call(server, "GET", f"/deliveries?product={code}&buyer=818181818181")[
            "deliveries"
        ]
        assert [(a["statusCode"], a["error"]) for a in flaky["history"]] == [
            (None, "injected: fault rule 1: delivery-failure"),
            (None, "injected: fault rule 1: delivery-failure"),
            (200, None),
        ]

        again = call(
            server,
            "POST",
            "/deliveries/redeliver",
            {"event": held["event"]["eventId"], "target": "queue"},
        )
        assert (again["status"], again["attempts"]) == ("pending", 1)
        [repeated] = moto.read(queue_url, 1)
        listed = mm("deliveries", "targets", cwd=tmp_path, env=env)
    finally:
        server.stop()
    assert repeated == first  # the same message, delivered again on request
    assert listed.stdout == f"{code}  queue  sqs  pending 0, delivered 2, failed 0\n"


def test_two_nodes_on_one_ledger_deliver_each_notification_once(tmp_path: Path, moto: Moto) -> None:
    """Both nodes run a deliverer over the one outbox (SQLite file or PostgreSQL database):
    the claims make each delivery go out from one of them."""
    code = "legacy-e"
    queue_url, _ = moto.queue("legacy-e")
    targets = [_target(moto, "queue", "sqs", queue_url=queue_url)]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    first = ServerProcess(tmp_path / "ledger.db", catalog).start()
    second = ServerProcess(tmp_path / "second.db", None, db_url=first.db_url).start()
    buyers = [f"9{i:02d}000000000"[:12] for i in range(8)]
    try:
        for i, buyer in enumerate(buyers):
            node = (first, second)[i % 2]
            agreement = subscribe(node, code, buyer)
            transition((second, first)[i % 2], agreement, "suspend")
            transition(node, agreement, "resubscribe")
        bodies = moto.read(queue_url, 24)
        delivered = wait_delivered(first, code, 24)
    finally:
        second.stop()
        first.stop()
    assert len(bodies) == 24
    assert len({body["MessageId"] for body in bodies}) == 24  # each once
    assert sorted(body["MessageId"] for body in bodies) == sorted(
        d["event"]["eventId"] for d in delivered
    )
    per_customer: dict[str, list[str]] = {}
    for body in bodies:
        sent = json.loads(body["Message"])
        per_customer.setdefault(sent["customer-identifier"], []).append(sent["action"])
    assert (
        list(per_customer.values())
        == [["subscribe-success", "unsubscribe-success", "subscribe-success"]] * 8
    )


class SnsEndpoint:
    """An HTTP endpoint subscribed as SNS subscribes one: it confirms a SubscriptionConfirmation
    by visiting its SubscribeURL, and keeps every POST (headers and body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                endpoint.received.append((headers, body))
                if body.get("Type") == "SubscriptionConfirmation":  # raw: the bare Message
                    with urllib.request.urlopen(body["SubscribeURL"], timeout=10) as answer:
                        assert answer.status == 200
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[tuple[dict[str, str], dict[str, Any]]]:
        deadline = time.monotonic() + 20
        while len(self.received) < count:
            assert time.monotonic() < deadline, self.received
            time.sleep(0.05)
        return self.received


def verifies(message: dict[str, str]) -> bool:
    """Whether the SNS signature verifies with the certificate at SigningCertURL."""
    with urllib.request.urlopen(message["SigningCertURL"], timeout=10) as answer:
        certificate = x509.load_pem_x509_certificate(answer.read())
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(
            base64.b64decode(message["Signature"]),
            string_to_sign(message).encode(),
            padding.PKCS1v15(),
            hashes.SHA1(),  # SNS SignatureVersion 1
        )
    except InvalidSignature:
        return False
    return True


def test_an_http_target_speaking_snss_protocol_is_confirmed_first_and_signs(
    tmp_path: Path,
) -> None:
    endpoint = SnsEndpoint()
    code = "legacy-f"
    targets = [
        {"name": "https-endpoint", "kind": "http", "url": endpoint.url, "sns_protocol": True}
    ]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        agreement = subscribe(server, code, "232323232323")
        received = endpoint.wait_for(2)
        transition(server, agreement, "entitlement-update")
        received = endpoint.wait_for(4)
        time.sleep(0.3)  # nothing more comes
        logged = call(server, "GET", f"/events?product={code}")["events"]
        verified = [verifies(body) for _, body in received]
        tampered = verifies({**received[1][1], "Message": "tampered"})
    finally:
        server.stop()
        endpoint.server.shutdown()
        endpoint.server.server_close()
    topics = [
        f"arn:aws:sns:us-east-1:287250355862:aws-mp-{which}-notification-{code}"
        for which in ("subscription", "entitlement")
    ]
    assert [(h["x-amz-sns-message-type"], b["Type"], b["TopicArn"]) for h, b in received] == [
        ("SubscriptionConfirmation", "SubscriptionConfirmation", topics[0]),
        ("Notification", "Notification", topics[0]),
        ("SubscriptionConfirmation", "SubscriptionConfirmation", topics[1]),
        ("Notification", "Notification", topics[1]),
    ]
    confirmation = received[0][1]
    assert confirmation["Message"] == (
        f"You have chosen to subscribe to the topic {topics[0]}.\nTo confirm the subscription, "
        "visit the SubscribeURL included in this message."
    )
    assert confirmation["SubscribeURL"].startswith(
        f"{server.url}/_marketmeter/sns?Action=ConfirmSubscription&TopicArn="
    )
    assert "x-amz-sns-subscription-arn" not in received[0][0]
    assert verified == [True] * 4  # with the certificate at SigningCertURL
    assert not tampered
    notification = received[1][1]
    assert {k: v for k, v in notification.items() if k not in ("Signature", "SigningCertURL")} == {
        k: v for k, v in logged[0]["message"].items() if k not in ("Signature", "SigningCertURL")
    }
    assert notification["SigningCertURL"] == f"{server.url}/_marketmeter/sns/certificate.pem"
    headers = received[1][0]
    assert (headers["x-amz-sns-message-id"], headers["x-amz-sns-topic-arn"]) == (
        notification["MessageId"],
        topics[0],
    )
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert headers["user-agent"] == "Amazon Simple Notification Service Agent"
    [delivery] = logged[0]["deliveries"]
    assert [a["error"] for a in delivery["history"]] == [
        "SubscriptionConfirmation sent; waiting for a GET of its SubscribeURL",
        None,
    ]


@pytest.mark.backend_agnostic  # formats, fault rules, quotas: no ledger
def test_http_targets_with_raw_delivery_get_the_bare_message(tmp_path: Path) -> None:
    """raw_delivery on an http target: the bare Message and x-amz-sns-rawdelivery, as SNS's
    raw message delivery POSTs it; over the SNS protocol, after the (JSON) confirmation."""
    plain, subscribed = SnsEndpoint(), SnsEndpoint()
    code = "legacy-raw"
    targets = [
        {"name": "plain", "kind": "http", "url": plain.url, "raw_delivery": True},
        {
            "name": "subscribed",
            "kind": "http",
            "url": subscribed.url,
            "sns_protocol": True,
            "raw_delivery": True,
        },
    ]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        agreement = subscribe(server, code, "252525252525")
        [(headers, body)] = plain.wait_for(1)
        [confirmation, (raw_headers, raw_body)] = subscribed.wait_for(2)
        [logged] = call(server, "GET", f"/events?product={code}")["events"]
    finally:
        server.stop()
        for endpoint in (plain, subscribed):
            endpoint.server.shutdown()
            endpoint.server.server_close()
    expected = message(agreement["customerIdentifier"], code, "subscribe-success")
    assert body == raw_body == expected == json.loads(logged["message"]["Message"])
    for sent in (headers, raw_headers):
        assert sent["x-amz-sns-rawdelivery"] == "true"
        assert sent["x-amz-sns-message-type"] == "Notification"
        assert sent["x-amz-sns-message-id"] == logged["message"]["MessageId"]
    assert confirmation[1]["Type"] == "SubscriptionConfirmation"
    assert "x-amz-sns-rawdelivery" not in confirmation[0]


@pytest.mark.timing
def test_a_hanging_target_never_slows_metering(tmp_path: Path) -> None:
    hanging = socket.socket()  # accepts connections (the backlog), never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)
    url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    code = "legacy-g"
    targets = [
        {"name": "queue", "kind": "sqs", "endpoint_url": url, "queue_url": f"{url}/1/q"},
        {"name": "topics", "kind": "sns", "endpoint_url": url},
    ]
    catalog = _catalog(tmp_path / "catalog.yaml", [(code, "legacy", targets)])
    server = ServerProcess(tmp_path / "ledger.db", catalog).start()
    try:
        customer = subscribe(server, code, "343434343434")["customerIdentifier"]
        client = make_client(server.url)
        slowest = 0.0
        stamp = datetime.fromtimestamp(int(time.time()), UTC)  # one hour's key
        for quantity in range(1, 21):
            started = time.monotonic()
            answer = client.batch_meter_usage(
                ProductCode=code,
                UsageRecords=[
                    {
                        "Timestamp": stamp,
                        "CustomerIdentifier": customer,
                        "Dimension": "users",
                        "Quantity": quantity,
                    }
                ],
            )
            slowest = max(slowest, time.monotonic() - started)
            assert [r["Status"] for r in answer["Results"]] == [
                "Success" if quantity == 1 else "DuplicateRecord"  # one record per hour
            ]
        pending = call(server, "GET", f"/deliveries?product={code}&status=pending")["deliveries"]
    finally:
        server.stop()
        hanging.close()
    assert slowest < 0.5  # while both targets hang (1 s timeouts), retried in the background
    assert sorted(d["target"] for d in pending) == ["queue", "topics"]

"""The crash test's load: its catalog, the keys it meters and the client threads.

The catalog (``crash_catalog``) has one SaaS product with ``DIMENSIONS`` dimensions and
``buyers`` subscribed buyers (BatchMeterUsage, called with the seller's key), and one AMI
product the buyer ``BUYER_ACCOUNT`` is entitled to (MeterUsage, called with that buyer's key
and a session token naming the instance, ``metering/callers.py``).

Every record has its own key (``KeySpace``): BatchMeterUsage walks buyers, dimensions and the
last ``HOURS`` hours, then the load is MeterUsage only, whose keys (one instance each) never
run out. A client sends a request until it is answered; an unanswered one (connection refused
or cut, timeout, 5xx) is sent again later with the very same body, so the very same keys.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from reliability.crash_checker import Acknowledgements, RecordKey

__all__ = [
    "AMI_PRODUCT",
    "BUYER_ACCOUNT",
    "BUYER_KEY",
    "DIMENSIONS",
    "HOURS",
    "SAAS_PRODUCT",
    "SELLER_KEY",
    "KeySpace",
    "LoadClient",
    "LoadState",
    "MeteringRequest",
    "crash_catalog",
]

SELLER_KEY = "AKIACRASHSELLER00001"
BUYER_KEY = "AKIACRASHBUYER000001"
BUYER_ACCOUNT = "299999999999"
FIRST_SAAS_BUYER = 200000000000
SAAS_PRODUCT = "crash-saas"
AMI_PRODUCT = "crash-ami"
AMI_DIMENSION = "hours"
DIMENSIONS = 10
HOURS = 3
MAX_BATCH = 25
METER_USAGE_SHARE = 0.2  # of new requests
RETRY_PAUSES = (0.01, 0.02, 0.05, 0.1, 0.2)  # seconds after 1, 2, ... failures in a row
_TARGET = "AWSMPMeteringService."


def _authorization(access_key: str) -> str:
    # Open auth reads the access key id from the credential scope and verifies nothing.
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/us-east-1/aws-marketplace/"
        "aws4_request, SignedHeaders=host;x-amz-target, Signature=0"
    )


def crash_catalog(buyers: int) -> str:
    """The catalog YAML (see the module docstring)."""
    lines = [
        "sellers:",
        '  - account_id: "111122223333"',
        f"    access_keys: [{{access_key_id: {SELLER_KEY}, secret_access_key: crash-seller}}]",
        "products:",
        f'  - {{product_code: {SAAS_PRODUCT}, seller: "111122223333", kind: saas,',
        f"     dimensions: [{', '.join(f'd{d}' for d in range(DIMENSIONS))}]}}",
        f'  - {{product_code: {AMI_PRODUCT}, seller: "111122223333", kind: ami,',
        f"     dimensions: [{AMI_DIMENSION}]}}",
        "buyers:",
        f'  - account_id: "{BUYER_ACCOUNT}"',
        "    customer_identifier: crash-instance-owner",
        f"    access_keys: [{{access_key_id: {BUYER_KEY}, secret_access_key: crash-buyer}}]",
    ]
    lines += [f'  - {{account_id: "{FIRST_SAAS_BUYER + i}"}}' for i in range(buyers)]
    lines.append("agreements:")
    lines.append(f'  - {{buyer: "{BUYER_ACCOUNT}", product: {AMI_PRODUCT}}}')
    lines += [
        f'  - {{buyer: "{FIRST_SAAS_BUYER + i}", product: {SAAS_PRODUCT}}}' for i in range(buyers)
    ]
    return "\n".join(lines) + "\n"


def _hour(timestamp: int) -> int:
    return timestamp - timestamp % 3600


@dataclass
class MeteringRequest:
    """One request and everything needed to send it again unchanged."""

    operation: str
    body: bytes
    headers: dict[str, str]
    keys: list[tuple[RecordKey, int]]  # (key, quantity in millionths), in body order
    failed_at: float | None = None  # wall clock of the first unanswered attempt


class KeySpace:
    """Hands out fresh keys to the clients; ``start`` (epoch seconds) is the run's "now"."""

    def __init__(self, buyers: int, start: int, run_tag: str) -> None:
        self.buyers = buyers
        self.start = start
        self.run_tag = run_tag
        self._next_batch_key = 0
        self._next_instance = 0
        self._lock = threading.Lock()

    @property
    def batch_keys(self) -> int:
        return self.buyers * DIMENSIONS * HOURS

    def batch_request(self, size: int) -> MeteringRequest | None:
        """A BatchMeterUsage of ``size`` fresh keys (fewer at the end), or None when none left."""
        with self._lock:
            first = self._next_batch_key
            last = min(first + size, self.batch_keys)
            self._next_batch_key = last
        if first == last:
            return None
        records: list[dict[str, Any]] = []
        keys: list[tuple[RecordKey, int]] = []
        for index in range(first, last):
            buyer, rest = index % self.buyers, index // self.buyers
            dimension, hours_back = f"d{rest % DIMENSIONS}", rest // DIMENSIONS
            account = str(FIRST_SAAS_BUYER + buyer)
            timestamp = self.start - hours_back * 3600
            quantity = index % 7 + 1
            records.append(
                {
                    "Timestamp": timestamp,
                    "CustomerAWSAccountId": account,
                    "Dimension": dimension,
                    "Quantity": quantity,
                }
            )
            keys.append(((account, dimension, _hour(timestamp), ""), quantity * 1_000_000))
        body = orjson.dumps({"ProductCode": SAAS_PRODUCT, "UsageRecords": records})
        return MeteringRequest("BatchMeterUsage", body, self._headers("BatchMeterUsage"), keys)

    def meter_request(self) -> MeteringRequest:
        """A MeterUsage from a fresh instance (its session token) of ``BUYER_ACCOUNT``."""
        with self._lock:
            number = self._next_instance
            self._next_instance += 1
        instance = f"i-{self.run_tag}-{number:08d}"
        quantity = number % 5 + 1
        body = orjson.dumps(
            {
                "ProductCode": AMI_PRODUCT,
                "Timestamp": self.start,
                "UsageDimension": AMI_DIMENSION,
                "UsageQuantity": quantity,
            }
        )
        headers = self._headers("MeterUsage", BUYER_KEY)
        headers["X-Amz-Security-Token"] = instance
        key: RecordKey = (BUYER_ACCOUNT, AMI_DIMENSION, _hour(self.start), instance)
        return MeteringRequest("MeterUsage", body, headers, [(key, quantity * 1_000_000)])

    @staticmethod
    def _headers(operation: str, access_key: str = SELLER_KEY) -> dict[str, str]:
        return {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": _TARGET + operation,
            "Authorization": _authorization(access_key),
        }


@dataclass
class LoadState:
    """Shared by the clients and the harness: whether to start new requests, and counts."""

    producing: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: int = 0  # attempts, answered or not
    unanswered: int = 0  # attempts that got no answer (and were sent again)
    retried_requests: list[MeteringRequest] = field(default_factory=list)
    left_unacknowledged: list[MeteringRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, answered: bool, request: MeteringRequest) -> None:
        with self._lock:
            self.requests += 1
            if not answered:
                self.unanswered += 1
                if request.failed_at is None:
                    request.failed_at = time.time()
                    self.retried_requests.append(request)


class LoadClient(threading.Thread):
    """One client: new requests while ``producing``, retries until each is answered."""

    def __init__(
        self,
        url: str,
        keys: KeySpace,
        acks: Acknowledgements,
        state: LoadState,
        rng: random.Random,
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.keys = keys
        self.acks = acks
        self.state = state
        self.rng = rng
        self.pending: collections.deque[MeteringRequest] = collections.deque()
        self.idle = threading.Event()  # set once draining left nothing unanswered

    def run(self) -> None:
        failures = 0
        with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0)) as http:
            while not self.state.stopping.is_set():
                request = self._next()
                if request is None:  # draining, and nothing left to send
                    self.idle.set()
                    self.state.stopping.wait(0.01)
                    continue
                self.idle.clear()
                answered = self._send(http, request)
                self.state.count(answered, request)
                if answered:
                    failures = 0
                else:
                    self.pending.append(request)
                    time.sleep(RETRY_PAUSES[min(failures, len(RETRY_PAUSES) - 1)])
                    failures += 1
        with self.state._lock:
            self.state.left_unacknowledged.extend(self.pending)

    def _next(self) -> MeteringRequest | None:
        if self.pending:
            return self.pending.popleft()
        if not self.state.producing.is_set():
            return None
        request = None
        if self.rng.random() >= METER_USAGE_SHARE:
            request = self.keys.batch_request(self.rng.randint(1, MAX_BATCH))
        if request is None:
            request = self.keys.meter_request()
        self.acks.note_sent(request.keys)
        return request

    def _send(self, http: httpx.Client, request: MeteringRequest) -> bool:
        """Whether the request was answered (True) or must be sent again (False)."""
        try:
            response = http.post(self.url, content=request.body, headers=request.headers)
        except httpx.HTTPError:
            return False
        if response.status_code >= 500:
            return False
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            self.acks.refuse(f"{request.operation} {response.status_code}: not JSON")
            return True
        if response.status_code != 200:
            kind = str(answer.get("__type", "")).rsplit("#", 1)[-1]
            if kind == "ThrottlingException":
                return False
            self.acks.refuse(f"{request.operation} {response.status_code} {kind}")
            return True
        if request.operation == "MeterUsage":
            self.acks.acknowledge(request.keys[0][0], str(answer["MeteringRecordId"]))
            return True
        return self._batch_answer(request, answer)

    def _batch_answer(self, request: MeteringRequest, answer: dict[str, Any]) -> bool:
        keys = {key[:3]: key for key, _ in request.keys}
        for result in answer.get("Results", []):
            record = result["UsageRecord"]
            account, dimension = record["CustomerAWSAccountId"], record["Dimension"]
            key = keys[(account, dimension, _hour(int(record["Timestamp"])))]
            if result["Status"] == "Success":
                self.acks.acknowledge(key, str(result["MeteringRecordId"]))
            else:
                self.acks.refuse(f"BatchMeterUsage {key}: {result['Status']}")
        return not answer.get("UnprocessedRecords")

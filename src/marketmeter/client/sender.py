"""Sending aggregated records to AWS and storing every answer.

``Sender.send`` takes pending records and sends them: BatchMeterUsage in batches of 25 (one
product per batch), or one MeterUsage call per record. Before each call the records' attempt
count is committed, so a record that may have reached AWS is never changed again; after it,
each answer is stored:

- ``Success`` -> ``sent`` with its MeteringRecordId; ``DuplicateRecord`` /
  ``DuplicateRequestException`` -> ``duplicate``; ``CustomerNotSubscribed`` -> ``failed``;
- ``UnprocessedRecords``, throttling, 5xx and network errors -> sent again after a backoff
  with full jitter, up to ``Backoff.max_attempts`` calls, then left ``pending`` for the next
  flush;
- an error refusing the whole batch because of one record (an invalid dimension, license,
  tag, allocation, a timestamp out of bounds) -> the batch is split and each record sent
  alone, so the culprit is ``failed`` (or ``expired``) and the others are billed;
- any other error (credentials, access) -> the records stay ``pending`` with the error noted.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from marketmeter.client.model import Mode, RecordState, SpoolRecord
from marketmeter.client.pacing import Backoff, RateLimiter
from marketmeter.client.spool import Spool

__all__ = ["MAX_BATCH", "FlushResult", "Sender"]

MAX_BATCH = 25

RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalServiceErrorException",
        "ServiceUnavailableException",
        "RequestTimeoutException",
    }
)
# Whole-request errors caused by one record: split the batch to find it.
RECORD_ERRORS = frozenset(
    {
        "InvalidUsageDimensionException",
        "InvalidLicenseException",
        "InvalidCustomerIdentifierException",
        "InvalidTagException",
        "InvalidUsageAllocationsException",
        "InvalidProductCodeException",
        "ValidationException",
        "TimestampOutOfBoundsException",
        "CustomerNotEntitledException",
        "IdempotencyConflictException",
    }
)
OUT_OF_BOUNDS = "TimestampOutOfBoundsException"


@dataclass
class FlushResult:
    """What one flush did: ``calls`` made to AWS, ``retries`` among them, records ``settled``
    per state, and ``errors`` that left records pending."""

    aggregated: int = 0
    calls: int = 0
    retries: int = 0
    settled: dict[RecordState, int] = field(default_factory=dict)
    pending: int = 0
    errors: list[str] = field(default_factory=list)
    settled_ids: list[int] = field(default_factory=list)

    def _settle(self, record_id: int, state: RecordState) -> None:
        self.settled[state] = self.settled.get(state, 0) + 1
        self.settled_ids.append(record_id)


def _plain(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


def _quantity(record: SpoolRecord, value: Decimal, integer: str, decimal: str) -> dict[str, Any]:
    return {decimal: _plain(value)} if record.is_decimal else {integer: int(value)}


def _allocations(record: SpoolRecord) -> dict[str, Any]:
    if not record.allocations:
        return {}
    parts = []
    for part in record.allocations:
        entry = _quantity(
            record,
            Decimal(part.quantity),
            "AllocatedUsageQuantity",
            "AllocatedUsageQuantityAsDecimal",
        )
        if part.tags:
            entry["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(part.tags.items())]
        parts.append(entry)
    return {"UsageAllocations": parts}


def usage_record(record: SpoolRecord) -> dict[str, Any]:
    """The BatchMeterUsage ``UsageRecord`` of ``record``: always the same for a record."""
    assert record.customer is not None
    entry: dict[str, Any] = {"Timestamp": record.timestamp, "Dimension": record.dimension}
    if record.customer.identifier:
        entry["CustomerIdentifier"] = record.customer.identifier
    else:
        entry["CustomerAWSAccountId"] = record.customer.account_id
    if record.customer.license_arn:
        entry["LicenseArn"] = record.customer.license_arn
    entry.update(_quantity(record, record.quantity, "Quantity", "QuantityAsDecimal"))
    entry.update(_allocations(record))
    return entry


def _answer_key(entry: dict[str, Any]) -> tuple[str, str, str, int]:
    stamp = entry["Timestamp"]
    epoch = int(stamp.timestamp()) if isinstance(stamp, datetime) else int(stamp)
    customer = entry.get("CustomerIdentifier") or entry.get("CustomerAWSAccountId") or ""
    return customer, entry["Dimension"], entry.get("LicenseArn") or "", epoch


def _code(error: ClientError) -> tuple[str, int, str]:
    response: dict[str, Any] = error.response
    problem = response.get("Error", {})
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return str(problem.get("Code", "")), status, str(problem.get("Message", ""))


class Sender:
    """Sends pending records with ``aws`` (a boto3 ``meteringmarketplace`` client)."""

    def __init__(
        self,
        spool: Spool,
        aws: Any,
        limiter: RateLimiter,
        backoff: Backoff,
        sleep: Callable[[float], None],
        expired: Callable[[SpoolRecord], bool],
        draw: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.spool = spool
        self.aws = aws
        self.limiter = limiter
        self.backoff = backoff
        self.sleep = sleep
        self.expired = expired
        self.draw = draw

    def send(self, records: Sequence[SpoolRecord], result: FlushResult) -> None:
        batches: dict[str | None, list[SpoolRecord]] = {}
        for record in records:
            if record.mode is Mode.METER_USAGE:
                self._meter_usage(record, result)
            else:
                batches.setdefault(record.product_code, []).append(record)
        for product, group in batches.items():
            for start in range(0, len(group), MAX_BATCH):
                self._batch(product, group[start : start + MAX_BATCH], result)

    def _call(
        self,
        records: Sequence[SpoolRecord],
        result: FlushResult,
        operation: Callable[..., Any],
        request: dict[str, Any],
    ) -> Any:
        self.spool.mark_attempt(r.id for r in records)
        self.limiter.acquire()
        result.calls += 1
        return operation(**request)

    def _pause(self, attempt: int, result: FlushResult) -> bool:
        """Sleep before retry ``attempt``; False once the attempts are spent."""
        if attempt + 1 >= self.backoff.max_attempts:
            return False
        result.retries += 1
        self.sleep(self.backoff.delay(attempt, self.draw))
        return True

    def _refused(self, record: SpoolRecord, code: str, message: str, result: FlushResult) -> None:
        """A call for this record alone was refused with ``code``."""
        if code == OUT_OF_BOUNDS and not self.expired(record):
            # Our clock says it is in the window: a skewed clock; keep it, try again later.
            self._keep(record, code, message, result)
            return
        state = RecordState.EXPIRED if code == OUT_OF_BOUNDS else RecordState.FAILED
        self.spool.settle(record.id, state, error_code=code, error_message=message)
        result._settle(record.id, state)

    def _keep(self, record: SpoolRecord, code: str, message: str, result: FlushResult) -> None:
        self.spool.settle(record.id, RecordState.PENDING, error_code=code, error_message=message)
        result.errors.append(f"record {record.id}: {code}: {message}")

    def _batch(self, product: str | None, chunk: list[SpoolRecord], result: FlushResult) -> None:
        unsent = chunk
        attempt = 0
        while unsent:
            by_key = {_answer_key(usage_record(r)): r for r in unsent}
            request: dict[str, Any] = {"UsageRecords": [usage_record(r) for r in unsent]}
            if product:
                request["ProductCode"] = product
            try:
                response = self._call(unsent, result, self.aws.batch_meter_usage, request)
            except ClientError as error:
                code, status, message = _code(error)
                if code in RETRYABLE or status >= 500 or status == 429:
                    if self._pause(attempt, result):
                        attempt += 1
                        continue
                    for record in unsent:
                        self._keep(record, code, message, result)
                    return
                if code in RECORD_ERRORS:
                    if len(unsent) > 1:
                        for record in unsent:
                            self._batch(product, [record], result)
                    else:
                        self._refused(unsent[0], code, message, result)
                    return
                for record in unsent:
                    self._keep(record, code, message, result)
                return
            except BotoCoreError as error:  # connection refused, reset, timed out
                if self._pause(attempt, result):
                    attempt += 1
                    continue
                for record in unsent:
                    self._keep(record, type(error).__name__, str(error), result)
                return
            outcomes: list[tuple[int, RecordState, str | None, str | None]] = []
            for answer in response.get("Results", []):
                found = by_key.pop(_answer_key(answer["UsageRecord"]), None)
                if found is None:
                    result.errors.append(f"an answer for no record sent: {answer}")
                    continue
                record = found
                status_name = answer.get("Status")
                outcome: tuple[int, RecordState, str | None, str | None]
                if status_name == "Success":
                    outcome = (record.id, RecordState.SENT, answer["MeteringRecordId"], None)
                elif status_name == "DuplicateRecord":
                    outcome = (record.id, RecordState.DUPLICATE, None, "DuplicateRecord")
                else:
                    outcome = (record.id, RecordState.FAILED, None, str(status_name))
                outcomes.append(outcome)
            self.spool.settle_many(outcomes)
            for record_id, state, _, _ in outcomes:
                result._settle(record_id, state)
            held = [_answer_key(u) for u in response.get("UnprocessedRecords", [])]
            unsent = [by_key.pop(key) for key in held if key in by_key]
            for record in by_key.values():  # neither answered nor held back: ask again later
                self._keep(record, "NoAnswer", "not in Results nor UnprocessedRecords", result)
            if unsent and not self._pause(attempt, result):
                for record in unsent:
                    self._keep(record, "UnprocessedRecords", "still unprocessed", result)
                return
            attempt += 1

    def _meter_usage(self, record: SpoolRecord, result: FlushResult) -> None:
        request: dict[str, Any] = {
            "ProductCode": record.product_code,
            "Timestamp": record.timestamp,
            "UsageDimension": record.dimension,
            **_quantity(record, record.quantity, "UsageQuantity", "UsageQuantityAsDecimal"),
            **_allocations(record),
        }
        attempt = 0
        while True:
            try:
                response = self._call([record], result, self.aws.meter_usage, request)
            except ClientError as error:
                code, status, message = _code(error)
                if code in RETRYABLE or status >= 500 or status == 429:
                    if self._pause(attempt, result):
                        attempt += 1
                        continue
                    self._keep(record, code, message, result)
                elif code == "DuplicateRequestException":
                    self.spool.settle(record.id, RecordState.DUPLICATE, error_code=code)
                    result._settle(record.id, RecordState.DUPLICATE)
                elif code in RECORD_ERRORS:
                    self._refused(record, code, message, result)
                else:
                    self._keep(record, code, message, result)
                return
            except BotoCoreError as error:
                if self._pause(attempt, result):
                    attempt += 1
                    continue
                self._keep(record, type(error).__name__, str(error), result)
                return
            self.spool.settle(record.id, RecordState.SENT, response["MeteringRecordId"])
            result._settle(record.id, RecordState.SENT)
            return

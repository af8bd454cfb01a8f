"""``MeteringClient``: record usage durably, send it as AWS wants it, report every outcome.

    meter = MeteringClient("/var/lib/myapp/metering.db", product_code="prod-abc123")
    meter.record("cust-1", "api_calls", 3)          # on disk when it returns
    meter.flush()                                   # closed hours -> BatchMeterUsage

``flush`` folds the usage of closed hours into one record per customer x dimension x hour,
marks records the window is about to close on as ``expired`` (never sending a batch AWS would
refuse whole), raises the alarm for those within ``alarm_margin`` of it, and sends the rest
(``marketmeter.client.sender``). One flush runs at a time per spool, across processes.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketmeter.client.model import (
    Allocation,
    Customer,
    Mode,
    Quantity,
    RecordState,
    SpoolRecord,
    Status,
    hour_of,
    normalize_quantity,
    to_epoch,
)
from marketmeter.client.pacing import Backoff, RateLimiter
from marketmeter.client.sender import FlushResult, Sender
from marketmeter.client.spool import Spool

__all__ = ["MeteringClient", "make_aws_client"]

WINDOW = timedelta(hours=6)  # AWS refuses usage this old (BatchMeterUsage and MeterUsage)


def make_aws_client(**options: Any) -> Any:
    """A boto3 ``meteringmarketplace`` client whose own retries are off (the metering client
    retries, with its spool's guarantees). ``options`` go to ``boto3.client`` (``endpoint_url``,
    ``region_name``, credentials); ``config`` may be a ``botocore.config.Config`` to merge."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=30,
    )
    extra = options.pop("config", None)
    return boto3.client(
        "meteringmarketplace", config=config.merge(extra) if extra else config, **options
    )


def _now() -> datetime:
    return datetime.now(UTC)


class MeteringClient:
    """Usage metering with a durable spool at ``spool``.

    ``product_code``: the product records are sent for (may be None for BatchMeterUsage when
    every record has a LicenseArn). ``mode``: ``Mode.BATCH`` (SaaS, BatchMeterUsage) or
    ``Mode.METER_USAGE`` (AMI and container products, from the instance or task).
    ``aws``: a boto3 ``meteringmarketplace`` client, made on first use by ``make_aws_client``
    when not given. ``clock``: the time (an aware datetime); ``sleep``: how to wait.
    ``window``: AWS's window; ``send_margin``: records closer than this to its end are
    ``expired`` rather than sent; ``alarm_margin``: ``on_alarm`` is called with the pending
    records closer than this. ``on_outcome`` is called with every record that reaches a final
    state (sent, duplicate, failed, expired) or turns out ``late``.
    """

    def __init__(
        self,
        spool: str | Path,
        product_code: str | None = None,
        mode: Mode | str = Mode.BATCH,
        aws: Any = None,
        *,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
        rate: float = 10.0,
        backoff: Backoff | None = None,
        window: timedelta = WINDOW,
        send_margin: timedelta = timedelta(minutes=5),
        alarm_margin: timedelta = timedelta(hours=1),
        on_outcome: Callable[[SpoolRecord], None] | None = None,
        on_alarm: Callable[[list[SpoolRecord]], None] | None = None,
    ) -> None:
        self.mode = Mode(mode)
        self.spool = Spool(spool)
        self.product_code = product_code
        self._aws = aws
        self.clock = clock
        self.sleep = sleep
        self.limiter = RateLimiter(rate, sleep=sleep)
        self.backoff = backoff or Backoff()
        self.window = window
        self.send_margin = send_margin
        self.alarm_margin = alarm_margin
        self.on_outcome = on_outcome
        self.on_alarm = on_alarm

    @classmethod
    def open_existing(cls, spool: str | Path, **options: Any) -> MeteringClient:
        """A client on a spool that must exist already (``SpoolError`` otherwise)."""
        Spool(spool, create=False).close()
        return cls(spool, **options)

    @property
    def aws(self) -> Any:
        if self._aws is None:
            self._aws = make_aws_client()
        return self._aws

    # -- recording ---------------------------------------------------------------------------

    def record(
        self,
        customer: str | Customer | None,
        dimension: str,
        quantity: Quantity,
        at: datetime | None = None,
        allocations: Iterable[Allocation] | None = None,
    ) -> None:
        """Append one usage event to the spool; returns once it is on disk.

        ``customer``: a CustomerIdentifier, or a ``Customer`` (``account_id`` and
        ``license_arn`` for concurrent agreements); None in MeterUsage mode. ``quantity``: an
        int or a Decimal (at most 6 places). ``at``: when the usage happened (default: now);
        it picks the hour. ``allocations``: its split by tags, adding up to ``quantity``.
        """
        self.record_many([(customer, dimension, quantity, at, allocations)])

    def record_many(
        self,
        events: Iterable[
            tuple[
                str | Customer | None, str, Quantity, datetime | None, Iterable[Allocation] | None
            ]
        ],
    ) -> None:
        """``record`` for several events in one transaction (all or none on disk)."""
        self.spool.append([self._row(*event) for event in events])

    def _row(
        self,
        customer: str | Customer | None,
        dimension: str,
        quantity: Quantity,
        at: datetime | None,
        allocations: Iterable[Allocation] | None,
    ) -> dict[str, Any]:
        who: Customer | None = None
        if self.mode is Mode.METER_USAGE:
            if customer is not None:
                raise ValueError("MeterUsage bills the instance's buyer: customer must be None")
            if not self.product_code:
                raise ValueError("MeterUsage mode needs a product_code")
        elif isinstance(customer, str):
            who = Customer(identifier=customer)
        elif isinstance(customer, Customer):
            who = customer
        else:
            raise ValueError("BatchMeterUsage needs a customer (an identifier or a Customer)")
        if not isinstance(dimension, str) or not dimension:
            raise ValueError("dimension must be a non-empty string")
        amount, is_decimal = normalize_quantity(quantity)
        epoch = to_epoch(at if at is not None else self.clock())
        parts = None
        if allocations is not None:
            parts = []
            total = Decimal(0)
            for part in allocations:
                part_amount, part_decimal = normalize_quantity(part.quantity)
                is_decimal = is_decimal or part_decimal
                total += part_amount
                parts.append([str(part_amount), {str(k): str(v) for k, v in part.tags.items()}])
            if total != amount:
                raise ValueError(f"allocations add up to {total}, not to the quantity {amount}")
        return {
            "mode": self.mode.value,
            "product_code": self.product_code or "",
            "customer_identifier": who.identifier or "" if who else "",
            "account_id": who.account_id or "" if who else "",
            "license_arn": who.license_arn or "" if who else "",
            "dimension": dimension,
            "hour": hour_of(epoch),
            "at": epoch,
            "quantity": str(amount),
            "is_decimal": int(is_decimal),
            "allocations": json.dumps(parts) if parts is not None else None,
        }

    # -- sending -----------------------------------------------------------------------------

    def flush(self, include_open_hour: bool = False) -> FlushResult:
        """Send what is due: the usage of closed hours (and of the current one with
        ``include_open_hour``; usage recorded for it afterwards is then ``late``)."""
        with self._flush_lock():
            now = self.clock()
            result = FlushResult()
            cutoff = hour_of(to_epoch(now)) + (3600 if include_open_hour else 0)
            result.aggregated = self.spool.aggregate(cutoff)
            late = self.spool.records("r.state = 'late' AND r.error_code IS NULL")
            for record in late:
                self.spool.settle(record.id, RecordState.LATE, error_code="LateUsage")
                result._settle(record.id, RecordState.LATE)
            due = []
            for record in self.spool.pending(self.mode):
                if self._expired(record, now):
                    self.spool.settle(
                        record.id,
                        RecordState.EXPIRED,
                        error_code="WindowClosed",
                        error_message=f"not billed before {record.timestamp + self.window}"
                        + (" (it was sent before: it may be billed)" if record.attempts else ""),
                    )
                    result._settle(record.id, RecordState.EXPIRED)
                else:
                    due.append(record)
            at_risk = [r for r in due if self._at_risk(r, now)]
            if at_risk and self.on_alarm is not None:
                self.on_alarm(at_risk)
            sender = Sender(
                self.spool,
                self.aws,
                self.limiter,
                self.backoff,
                self.sleep,
                lambda record: self._expired(record, self.clock()),
            )
            sender.send(due, result)
            result.pending = len(self.spool.pending(self.mode))
        if self.on_outcome is not None and result.settled_ids:
            ids = ",".join(str(i) for i in result.settled_ids)
            for record in self.spool.records(f"r.id IN ({ids})"):
                if record.state is not RecordState.PENDING:
                    self.on_outcome(record)
        return result

    def _expired(self, record: SpoolRecord, now: datetime) -> bool:
        return now >= record.timestamp + self.window - self.send_margin

    def _at_risk(self, record: SpoolRecord, now: datetime) -> bool:
        return now >= record.timestamp + self.window - self.alarm_margin

    @contextmanager
    def _flush_lock(self) -> Any:
        path = self.spool.path.with_name(self.spool.path.name + ".flush-lock")
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- observing ---------------------------------------------------------------------------

    def status(self) -> Status:
        """Pending, sent, failed... per customer and dimension; ``at_risk`` counts pending
        records within ``alarm_margin`` of the window's end."""
        edge = self.clock() - self.window + self.alarm_margin
        return self.spool.status(edge.timestamp())

    def records(
        self, state: RecordState | str | None = None, customer: str | None = None
    ) -> list[SpoolRecord]:
        """The spool's records, oldest first, filtered by state and customer (identifier or
        account id)."""
        clauses, params = ["1"], []
        if state is not None:
            clauses.append("r.state = ?")
            params.append(RecordState(state).value)
        if customer is not None:
            clauses.append("(r.customer_identifier = ? OR r.account_id = ?)")
            params += [customer, customer]
        return self.spool.records(" AND ".join(clauses), params)

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> MeteringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The durable spool: usage events and the aggregated records made of them, in SQLite.

One file (WAL, ``synchronous=FULL``): a ``record()`` returns once its row is committed, so a
crash after it loses nothing. Any number of threads (one connection each) and processes may
write at once; SQLite serialises the commits.

Two tables. ``usage`` holds every event as recorded. ``records`` holds what is sent: one row
per key (mode, product, customer, license, dimension, hour), made by ``aggregate`` once the
hour has closed. A record that was ever handed to the network (``attempts > 0``) is frozen:
a retry sends exactly it again, so AWS answers the first MeteringRecordId. Usage arriving for
a frozen key becomes a ``late`` record, kept and reported, never sent.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketmeter.client.model import (
    MAX_INTEGER_QUANTITY,
    Allocation,
    Customer,
    Mode,
    RecordState,
    SpoolRecord,
    Status,
    StatusRow,
    utc,
)

__all__ = ["Spool", "SpoolError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,
    product_code TEXT NOT NULL,
    customer_identifier TEXT NOT NULL,
    account_id TEXT NOT NULL,
    license_arn TEXT NOT NULL,
    dimension TEXT NOT NULL,
    hour INTEGER NOT NULL,
    at REAL NOT NULL,
    quantity TEXT NOT NULL,
    is_decimal INTEGER NOT NULL,
    allocations TEXT,
    recorded_at REAL NOT NULL,
    record_id INTEGER REFERENCES records(id)
);
CREATE INDEX IF NOT EXISTS usage_open ON usage(hour) WHERE record_id IS NULL;
CREATE INDEX IF NOT EXISTS usage_record ON usage(record_id);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,
    product_code TEXT NOT NULL,
    customer_identifier TEXT NOT NULL,
    account_id TEXT NOT NULL,
    license_arn TEXT NOT NULL,
    dimension TEXT NOT NULL,
    hour INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    quantity TEXT NOT NULL,
    is_decimal INTEGER NOT NULL,
    allocations TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    metering_record_id TEXT,
    error_code TEXT,
    error_message TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_key
    ON records(mode, product_code, customer_identifier, account_id, license_arn, dimension, hour);
CREATE INDEX IF NOT EXISTS records_state ON records(state);
"""

_KEY = ("mode", "product_code", "customer_identifier", "account_id", "license_arn", "dimension")
Key = tuple[str, str, str, str, str, str, int]


class SpoolError(Exception):
    """The spool file is missing (when it must exist) or not a spool."""


class Spool:
    """The spool at ``path``, created unless ``create=False``."""

    def __init__(self, path: str | os.PathLike[str], create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise SpoolError(f"no spool at {self.path}")
        self._local = threading.local()
        try:
            db = self._connection()
            db.executescript(_SCHEMA) if create else self._check(db)
        except sqlite3.DatabaseError as error:
            raise SpoolError(f"{self.path} is not a spool: {error}") from error

    def _check(self, db: sqlite3.Connection) -> None:
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as error:
            raise SpoolError(f"{self.path} is not a spool: {error}") from error
        if not {"usage", "records"} <= tables:
            raise SpoolError(f"{self.path} is not a spool")

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def pragma(self, name: str) -> Any:
        return self._connection().execute(f"PRAGMA {name}").fetchone()[0]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", None) == os.getpid():
            db.close()
        self._local.db = None

    # -- recording ---------------------------------------------------------------------------

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Commit usage events (one transaction; durable when this returns)."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO usage (mode, product_code, customer_identifier, account_id,"
                " license_arn, dimension, hour, at, quantity, is_decimal, allocations,"
                " recorded_at) VALUES (:mode, :product_code, :customer_identifier,"
                " :account_id, :license_arn, :dimension, :hour, :at, :quantity, :is_decimal,"
                " :allocations, :recorded_at)",
                [{**row, "recorded_at": now} for row in rows],
            )

    # -- aggregating -------------------------------------------------------------------------

    def aggregate(self, before_hour: int) -> int:
        """Fold the events of hours before ``before_hour`` into records; returns how many
        events were folded. One transaction: a crash leaves all or none of it."""
        with self._transaction() as db:
            events = db.execute(
                "SELECT * FROM usage WHERE record_id IS NULL AND hour < ? ORDER BY id",
                (before_hour,),
            ).fetchall()
            columns = [c[0] for c in db.execute("SELECT * FROM usage LIMIT 0").description]
            groups: dict[Key, list[int]] = defaultdict(list)
            for event in events:
                row = dict(zip(columns, event, strict=True))
                key = (*(row[k] for k in _KEY), row["hour"])
                groups[key].append(row["id"])
            for key, ids in groups.items():
                target = self._target(db, key)
                db.executemany(
                    "UPDATE usage SET record_id = ? WHERE id = ?", [(target, i) for i in ids]
                )
                self._recompute(db, target)
        return len(events)

    def _target(self, db: sqlite3.Connection, key: Key) -> int:
        where = " AND ".join(f"{k} = ?" for k in (*_KEY, "hour"))
        existing = db.execute(
            f"SELECT id, state, attempts FROM records WHERE {where} ORDER BY id", key
        ).fetchall()
        for record_id, state, attempts in existing:
            if state in (RecordState.PENDING, RecordState.LATE) and attempts == 0:
                return int(record_id)  # never sent: it may still grow
        state = RecordState.LATE if existing else RecordState.PENDING
        cursor = db.execute(
            "INSERT INTO records (mode, product_code, customer_identifier, account_id,"
            " license_arn, dimension, hour, timestamp, quantity, is_decimal, state,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, '0', 0, ?, ?)",
            (*key, state, time.time()),
        )
        return int(cursor.lastrowid or 0)

    def _recompute(self, db: sqlite3.Connection, record_id: int) -> None:
        """The record's quantity, allocations and Timestamp from all its events."""
        total = Decimal(0)
        is_decimal = False
        latest = 0.0
        by_tags: dict[tuple[tuple[str, str], ...], Decimal] = defaultdict(Decimal)
        untagged = Decimal(0)
        allocated = False
        for quantity, decimal_flag, at, allocations in db.execute(
            "SELECT quantity, is_decimal, at, allocations FROM usage WHERE record_id = ?",
            (record_id,),
        ):
            total += Decimal(quantity)
            is_decimal = is_decimal or bool(decimal_flag)
            latest = max(latest, at)
            if allocations is None:
                untagged += Decimal(quantity)
                continue
            allocated = True
            for part_quantity, tags in json.loads(allocations):
                by_tags[tuple(sorted(tags.items()))] += Decimal(part_quantity)
        parts: list[list[Any]] = []
        if allocated:
            parts = [[str(q), dict(tags)] for tags, q in by_tags.items() if tags]
            untagged += sum((q for tags, q in by_tags.items() if not tags), Decimal(0))
            if untagged:
                parts.append([str(untagged), {}])
        error = None
        if not is_decimal and total > MAX_INTEGER_QUANTITY:
            error = f"{total} is more than an integer quantity can hold ({MAX_INTEGER_QUANTITY})"
        db.execute(
            "UPDATE records SET quantity = ?, is_decimal = ?, timestamp = ?, allocations = ?,"
            " updated_at = ?, state = CASE WHEN ? IS NULL THEN state ELSE 'failed' END,"
            " error_code = CASE WHEN ? IS NULL THEN error_code ELSE 'QuantityTooLarge' END,"
            " error_message = coalesce(?, error_message) WHERE id = ?",
            (
                str(total),
                int(is_decimal),
                int(latest),
                json.dumps(parts) if allocated else None,
                time.time(),
                error,
                error,
                error,
                record_id,
            ),
        )

    # -- sending -----------------------------------------------------------------------------

    def pending(self, mode: Mode | None = None) -> list[SpoolRecord]:
        clause = "state = 'pending'" + (" AND mode = ?" if mode else "")
        return self.records(clause, (mode,) if mode else ())

    def mark_attempt(self, ids: Iterable[int]) -> None:
        """Committed before a call: from now on these records are frozen."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE records SET attempts = attempts + 1, updated_at = ? WHERE id = ?",
                [(time.time(), i) for i in ids],
            )

    def settle(
        self,
        record_id: int,
        state: RecordState,
        metering_record_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE records SET state = ?, metering_record_id = coalesce(?,"
                " metering_record_id), error_code = ?, error_message = ?, updated_at = ?"
                " WHERE id = ?",
                (state, metering_record_id, error_code, error_message, time.time(), record_id),
            )

    def settle_many(
        self, outcomes: Sequence[tuple[int, RecordState, str | None, str | None]]
    ) -> None:
        """``(id, state, metering_record_id, error_code)`` for each answered record, at once."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE records SET state = ?, metering_record_id = coalesce(?,"
                " metering_record_id), error_code = ?, error_message = NULL, updated_at = ?"
                " WHERE id = ?",
                [(s, m, e, time.time(), i) for i, s, m, e in outcomes],
            )

    # -- reading -----------------------------------------------------------------------------

    def records(self, where: str = "1", params: Sequence[Any] = ()) -> list[SpoolRecord]:
        db = self._connection()
        cursor = db.execute(
            "SELECT r.*, (SELECT count(*) FROM usage u WHERE u.record_id = r.id) AS events"
            f" FROM records r WHERE {where} ORDER BY r.id",
            tuple(params),
        )
        columns = [c[0] for c in cursor.description]
        return [_record(dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]

    def unaggregated(self) -> tuple[int, list[tuple[str, str, Decimal]]]:
        """Events not folded yet: how many, and (customer, dimension, quantity) sums."""
        db = self._connection()
        rows = db.execute(
            "SELECT CASE WHEN customer_identifier != '' THEN customer_identifier"
            " ELSE account_id END, dimension, quantity FROM usage WHERE record_id IS NULL"
        ).fetchall()
        sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for customer, dimension, quantity in rows:
            sums[(customer, dimension)] += Decimal(quantity)
        return len(rows), [(c, d, q) for (c, d), q in sorted(sums.items())]

    def status(self, at_risk_before: float) -> Status:
        """Counts per state; ``at_risk``: pending records with a Timestamp before
        ``at_risk_before`` (epoch seconds)."""
        counts: dict[RecordState, int] = defaultdict(int)
        rows: dict[tuple[str, str, RecordState], list[Any]] = {}
        at_risk = 0
        for record in self.records():
            counts[record.state] += 1
            customer = record.customer.label if record.customer else ""
            row = rows.setdefault((customer, record.dimension, record.state), [0, Decimal(0)])
            row[0] += 1
            row[1] += record.quantity
            if record.state is RecordState.PENDING and (
                record.timestamp.timestamp() < at_risk_before
            ):
                at_risk += 1
        events, _ = self.unaggregated()
        return Status(
            unaggregated=events,
            counts=dict(counts),
            at_risk=at_risk,
            rows=tuple(StatusRow(c, d, s, n, q) for (c, d, s), (n, q) in sorted(rows.items())),
        )


def _record(row: dict[str, Any]) -> SpoolRecord:
    customer = None
    if row["mode"] == Mode.BATCH:
        customer = Customer(
            identifier=row["customer_identifier"] or None,
            account_id=row["account_id"] or None,
            license_arn=row["license_arn"] or None,
        )
    allocations = tuple(
        Allocation(Decimal(q), tags) for q, tags in json.loads(row["allocations"] or "[]")
    )
    return SpoolRecord(
        id=row["id"],
        mode=Mode(row["mode"]),
        product_code=row["product_code"] or None,
        customer=customer,
        dimension=row["dimension"],
        hour=utc(row["hour"]),
        timestamp=utc(row["timestamp"]),
        quantity=Decimal(row["quantity"]),
        is_decimal=bool(row["is_decimal"]),
        allocations=allocations,
        state=RecordState(row["state"]),
        attempts=row["attempts"],
        metering_record_id=row["metering_record_id"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        usage_events=row["events"],
    )

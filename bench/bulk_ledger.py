"""Pre-fill a SQLite ledger with billed rows, fast, for the ledger-growth benchmark.

``fill(db_path, rows, now=...)`` inserts ``rows`` billed records straight into
``usage_records`` of a ledger marketmeter already created (schema and bench catalog in place),
with ``executemany`` in big transactions and ``synchronous=OFF`` / ``journal_mode=OFF`` for the
fill only (the file is a throwaway until it is complete; the caller fills a copy). The keys look
like the bench's own: buyers c0..c<buyers-1> (accounts ``100000000000 + i``, as
``bench/make_catalog.py`` writes them), dimensions d0..d<dimensions-1>, product-scoped
(``product:<code>``), spread over the hours of the last ``days`` days but never the last
``RECENT_HOURS_LEFT_FREE`` hours, which ``bench/batch_load.lua`` bills into. Every row is a
distinct dedupe key, so the unique index holds ``rows`` entries; hours are filled oldest first,
so the index grows at its end, as a live ledger's does.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from marketmeter.metering.windows import floor_to_hour
from marketmeter.store.ledger_rows import LEDGER_COLUMNS, LedgerRow

__all__ = ["ACCOUNT_BASE", "RECENT_HOURS_LEFT_FREE", "FillReport", "fill", "filled_rows"]

ACCOUNT_BASE = 100_000_000_000  # buyer c<i> is account ACCOUNT_BASE + i (bench/make_catalog.py)
RECENT_HOURS_LEFT_FREE = 6  # the load bills the last 5 hours; the fill stays out of them
_HOUR = 3600
_STRIDE = 7919  # a prime: walks an hour's key space in a scattered order
_INSERT = f"INSERT INTO usage_records ({LEDGER_COLUMNS}) VALUES ({', '.join('?' * 14)})"


@dataclass(frozen=True, slots=True)
class FillReport:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


def filled_rows(
    rows: int,
    *,
    now: float,
    buyers: int = 20000,
    dimensions: int = 10,
    products: Sequence[str] = ("bench-saas",),
    days: int = 60,
) -> Iterator[LedgerRow]:
    """The ledger rows ``fill`` inserts, oldest hour first; each a distinct key."""
    hours = days * 24 - RECENT_HOURS_LEFT_FREE
    keys_per_hour = buyers * dimensions * len(products)
    if rows > hours * keys_per_hour:
        raise ValueError(
            f"{rows} rows do not fit in {hours} hours of {keys_per_hour} keys: "
            "use more days, buyers, dimensions or products"
        )
    stride = _STRIDE
    while math.gcd(stride, keys_per_hour) != 1:
        stride += 2
    newest = floor_to_hour(now) - RECENT_HOURS_LEFT_FREE * _HOUR
    oldest = newest - (hours - 1) * _HOUR
    accounts = [str(ACCOUNT_BASE + i) for i in range(buyers)]
    identifiers = [f"c{i}" for i in range(buyers)]
    dimension_names = [f"d{d}" for d in range(dimensions)]
    scopes = [f"product:{code}" for code in products]
    per_product = buyers * dimensions
    number = 0
    for hour_index in range(hours):
        count = rows // hours + (1 if hour_index < rows % hours else 0)
        hour = oldest + hour_index * _HOUR
        for k in range(count):
            # a bijection of 0..keys_per_hour-1 (stride is coprime): distinct keys in the hour
            slot = (k * stride + hour_index * 104729) % keys_per_hour
            product, rest = divmod(slot, per_product)
            dimension, buyer = divmod(rest, buyers)
            usage_timestamp = float(hour + number % _HOUR)
            yield (
                hour,
                scopes[product],
                accounts[buyer],
                dimension_names[dimension],
                (number % 97 + 1) * 1_000_000,
                f"00000000-0000-4000-8000-{number:012x}",
                products[product],
                None,
                identifiers[buyer],
                usage_timestamp,
                None,
                usage_timestamp + 30.0 + number % 600,
                "BatchMeterUsage",
                None,
            )
            number += 1


def fill(
    db_path: str | Path,
    rows: int,
    *,
    now: float,
    buyers: int = 20000,
    dimensions: int = 10,
    products: Sequence[str] = ("bench-saas",),
    days: int = 60,
    transaction_rows: int = 1_000_000,
) -> FillReport:
    """Insert ``rows`` billed rows into the ledger at ``db_path`` (see the module's docstring);
    ``now`` places the hours. Leaves the file in WAL mode, closed."""
    started = time.monotonic()
    connection = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -524288")  # 512 MiB
        source = filled_rows(
            rows, now=now, buyers=buyers, dimensions=dimensions, products=products, days=days
        )
        left = rows
        while left > 0:
            chunk = min(left, transaction_rows)
            connection.execute("BEGIN")
            connection.executemany(_INSERT, itertools.islice(source, chunk))
            connection.execute("COMMIT")
            left -= chunk
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()
    return FillReport(rows, time.monotonic() - started)

"""The billed-usage queries, for every backend: a ``UsageQuery`` as SQL (``?`` placeholders)
and a result row as a ``BilledRecord``; keyset pages and counts of it (exports); and summaries
(``UsageSummaryQuery``: quantities summed per window, product, dimension and customer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from marketmeter.metering.quantities import from_micros
from marketmeter.store.base import BilledRecord, UsageQuery, UsageSummaryQuery, UsageTotal
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "billed_record",
    "usage_count",
    "usage_page",
    "usage_query_sql",
    "usage_summary",
]

_RECORD_COLUMNS = (
    "metering_record_id, product_code, customer_account, customer_identifier, "
    "license_arn, dimension, quantity_micros, usage_timestamp, hour, allocations, "
    "received_at, operation, instance, seq"
)


def _where(query: UsageQuery) -> tuple[list[str], list[object]]:
    """The filters of ``query`` as SQL conditions and their parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if query.start is not None:
        clauses.append("hour >= ? AND usage_timestamp >= ?")
        params += [int(query.start // 3600) * 3600, query.start]
    if query.end is not None:
        clauses.append("hour < ? AND usage_timestamp < ?")
        params += [query.end, query.end]
    if query.product_code is not None:
        clauses.append("product_code = ?")
        params.append(query.product_code)
    if query.customer is not None:
        # an account id, or a CustomerIdentifier standing for its buyer's account
        clauses.append(
            "(customer_account = ? OR customer_account IN "
            "(SELECT account_id FROM buyers WHERE customer_identifier = ?))"
        )
        params += [query.customer, query.customer]
    if query.dimension is not None:
        clauses.append("dimension = ?")
        params.append(query.dimension)
    return clauses, params


def _where_sql(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def usage_query_sql(query: UsageQuery) -> tuple[str, list[object]]:
    clauses, params = _where(query)
    sql = (
        f"SELECT {_RECORD_COLUMNS} FROM usage_records {_where_sql(clauses)} "
        "ORDER BY usage_timestamp, seq LIMIT ?"
    )
    return sql, [*params, query.limit]


def usage_page(sql: SqlConnection, query: UsageQuery, after: int, size: int) -> list[BilledRecord]:
    """Up to ``size`` matching records with ``seq`` above ``after``, by ``seq``: the primary
    key, so each page starts where the last ended without re-reading it (keyset paging)."""
    clauses, params = _where(query)
    clauses.insert(0, "seq > ?")
    statement = (
        f"SELECT {_RECORD_COLUMNS} FROM usage_records {_where_sql(clauses)} ORDER BY seq LIMIT ?"
    )
    rows = sql.execute(statement, [after, *params, size]).fetchall()
    return [billed_record(row) for row in rows]


def usage_count(sql: SqlConnection, query: UsageQuery) -> int:
    clauses, params = _where(query)
    row = sql.execute(f"SELECT count(*) FROM usage_records {_where_sql(clauses)}", params)
    return int(row.fetchone()[0])


# The window a record falls in, from its hour bucket (epoch seconds, UTC). A month is summed
# from its days: SQL's integer division is the same on both backends, calendar months are not.
_BUCKETS = {"hour": "hour", "day": "(hour / 86400) * 86400", "month": "(hour / 86400) * 86400"}


def usage_summary(sql: SqlConnection, query: UsageSummaryQuery) -> list[UsageTotal]:
    clauses, params = _where(query.usage)
    keys = ["product_code", "dimension"] + (["customer_account"] if query.by_customer else [])
    statement = (
        f"SELECT {_BUCKETS[query.window]} AS bucket, {', '.join(keys)}, "
        "sum(quantity_micros), count(*) "
        f"FROM usage_records {_where_sql(clauses)} "
        f"GROUP BY bucket, {', '.join(keys)} ORDER BY bucket, {', '.join(keys)}"
    )
    totals: dict[tuple[int, str, str, str | None], list[int]] = {}
    for row in sql.execute(statement, params):
        start = int(row[0])
        if query.window == "month":
            start = _month_start(start)
        key = (start, row[1], row[2], row[3] if query.by_customer else None)
        held = totals.setdefault(key, [0, 0])
        held[0] += int(row[-2])
        held[1] += int(row[-1])
    return [
        UsageTotal(
            window_start=float(start),
            product_code=product,
            dimension=dimension,
            customer_aws_account_id=customer,
            quantity=from_micros(micros),
            records=records,
        )
        for (start, product, dimension, customer), (micros, records) in sorted(
            totals.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], item[0][3] or "")
        )
    ]


def _month_start(day: int) -> int:
    moment = datetime.fromtimestamp(day, UTC)
    return int(moment.replace(day=1).timestamp())


def billed_record(row: Sequence[Any]) -> BilledRecord:
    return BilledRecord(
        metering_record_id=row[0],
        product_code=row[1],
        customer_aws_account_id=row[2],
        customer_identifier=row[3],
        license_arn=row[4],
        dimension=row[5],
        quantity=from_micros(row[6]),
        usage_timestamp=row[7],
        hour=row[8],
        allocations=orjson.loads(row[9]) if row[9] is not None else None,
        received_at=row[10],
        operation=row[11],
        instance=row[12],
        seq=row[13] if len(row) > 13 else 0,
    )

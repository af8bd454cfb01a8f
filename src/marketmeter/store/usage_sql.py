"""The billed-usage queries, for every backend: a ``UsageQuery`` as SQL (``?`` placeholders)
and a result row as a ``BilledRecord``; a ``SummaryQuery`` as one ``GROUP BY`` (summed in the
database, exact on the micro-units) and its rows as ``UsageTotal``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from marketmeter.metering.quantities import from_micros
from marketmeter.store.base import BilledRecord, SummaryQuery, UsageQuery, UsageTotal

__all__ = ["billed_record", "summary_query_sql", "usage_query_sql", "usage_total"]


def usage_query_sql(query: UsageQuery) -> tuple[str, list[object]]:
    where, params = _where(query)
    sql = (
        "SELECT metering_record_id, product_code, customer_account, customer_identifier, "
        "license_arn, dimension, quantity_micros, usage_timestamp, hour, allocations, "
        "received_at, operation, instance "
        f"FROM usage_records {where} ORDER BY usage_timestamp, seq LIMIT ?"
    )
    return sql, [*params, query.limit]


def summary_query_sql(query: SummaryQuery) -> tuple[str, list[object]]:
    where, params = _where(query.filters)
    bucket = int(query.bucket_seconds)  # a literal: one of two integers, never input text
    keys = [f"(hour / {bucket}) * {bucket}"]
    keys.append("product_code" if query.by_product else "NULL")
    keys.append("customer_account" if query.by_customer else "NULL")
    keys.append("dimension")
    grouped = [key for key in keys if key != "NULL"]
    sql = (
        f"SELECT {', '.join(keys)}, SUM(quantity_micros), COUNT(*) FROM usage_records {where} "
        f"GROUP BY {', '.join(grouped)} ORDER BY {', '.join(grouped)}"
    )
    return sql, params


def usage_total(row: Sequence[Any]) -> UsageTotal:
    return UsageTotal(
        window_start=int(row[0]),
        product_code=row[1],
        customer_account=row[2],
        dimension=row[3],
        quantity=from_micros(int(row[4])),
        records=int(row[5]),
    )


def _where(query: UsageQuery) -> tuple[str, list[object]]:
    """The ``WHERE`` clause of ``query``'s filters and its parameters."""
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
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, params


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
    )

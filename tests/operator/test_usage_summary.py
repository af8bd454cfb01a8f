"""The usage summary's folding and rendering, on store rows made by hand: months of days (across
a year's end), one total per dimension, and the CSV of the dashboard's download."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from marketmeter.operator.usage_summary import summary_csv, summary_json, summary_query
from marketmeter.store.base import UsageTotal


def day(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def total(start: str, dimension: str, quantity: str, records: int = 1) -> UsageTotal:
    return UsageTotal(day(start), "prod-a", dimension, None, Decimal(quantity), records)


def test_months_are_their_days_summed_across_a_years_end() -> None:
    request = summary_query({"window": "month", "groupBy": "product"})
    assert (request.window, request.by_product, request.totals.by_customer) == (
        "month",
        True,
        False,
    )
    rows = [
        total("2026-12-30", "users", "1.5"),
        total("2026-12-31", "users", "2"),
        total("2026-12-31", "gb", "0.25"),
        total("2027-01-01", "users", "4", 2),
    ]
    found = summary_json(rows, request)
    assert found["rows"] == [
        {"windowStart": "2026-12-01T00:00:00Z", "windowEnd": "2027-01-01T00:00:00Z"}
        | {"productCode": "prod-a", "dimension": "gb", "quantity": 0.25, "records": 1},
        {"windowStart": "2026-12-01T00:00:00Z", "windowEnd": "2027-01-01T00:00:00Z"}
        | {"productCode": "prod-a", "dimension": "users", "quantity": 3.5, "records": 2},
        {"windowStart": "2027-01-01T00:00:00Z", "windowEnd": "2027-02-01T00:00:00Z"}
        | {"productCode": "prod-a", "dimension": "users", "quantity": 4, "records": 2},
    ]
    assert found["totals"] == [
        {"productCode": "prod-a", "dimension": "gb", "quantity": 0.25, "records": 1},
        {"productCode": "prod-a", "dimension": "users", "quantity": 7.5, "records": 4},
    ]
    assert summary_csv(found).splitlines() == [
        "windowStart,windowEnd,productCode,dimension,quantity,records",
        "2026-12-01T00:00:00Z,2027-01-01T00:00:00Z,prod-a,gb,0.25,1",
        "2026-12-01T00:00:00Z,2027-01-01T00:00:00Z,prod-a,users,3.5,2",
        "2027-01-01T00:00:00Z,2027-02-01T00:00:00Z,prod-a,users,4,2",
    ]


def test_the_dimension_is_always_a_key() -> None:
    request = summary_query({"groupBy": "customer", "limit": "10"})
    assert (request.window, request.limit) == ("day", 10)
    found = summary_json([], request)
    assert found["groupBy"] == ["customer", "dimension"]
    assert (found["rows"], found["totals"], found["truncated"]) == ([], [], False)

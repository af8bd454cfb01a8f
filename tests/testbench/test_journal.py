"""The request journal's ring: ids, bounds by count and by bytes, and every filter."""

from __future__ import annotations

import threading

import pytest

from marketmeter.testbench.journal import Journal, JournalEntry, JournalQuery


def entry(
    time: float = 100.0,
    operation: str | None = "BatchMeterUsage",
    product: str | None = "prod-a",
    status: int = 200,
    error_type: str | None = None,
    body: bytes = b"{}",
    key: str | None = "AKIA1",
) -> JournalEntry:
    return JournalEntry(
        time=time,
        wall_time=time + 0.5,
        request_id="req",
        operation=operation,
        target=f"AWSMPMeteringService.{operation}",
        access_key_id=key,
        product_code=product,
        request_body=body,
        status=status,
        error_type=error_type,
        response_body=b"{}",
    )


def ids(entries: list[JournalEntry]) -> list[int]:
    return [e.id for e in entries]


def test_ids_count_up_and_queries_answer_oldest_first() -> None:
    journal = Journal()
    for t in range(5):
        journal.record(entry(time=float(t)))
    assert ids(journal.query(JournalQuery())) == [1, 2, 3, 4, 5]
    assert ids(journal.query(JournalQuery(limit=2))) == [4, 5]
    assert ids(journal.query(JournalQuery(after=1, limit=2))) == [2, 3]
    assert ids(journal.query(JournalQuery(after=5))) == []


def test_bounded_by_count_drops_the_oldest() -> None:
    journal = Journal(max_entries=3)
    for t in range(5):
        journal.record(entry(time=float(t)))
    assert ids(journal.query(JournalQuery())) == [3, 4, 5]
    assert journal.stats() == {
        "entries": 3,
        "bytes": 12,
        "maxEntries": 3,
        "maxBytes": 12 * 1024 * 1024,
        "dropped": 2,
        "lastId": 5,
    }


def test_bounded_by_bytes_and_an_oversized_entry_keeps_no_body() -> None:
    journal = Journal(max_entries=100, max_bytes=100)
    journal.record(entry(body=b"x" * 40))  # 42 bytes
    journal.record(entry(body=b"y" * 40))  # 84 in all
    journal.record(entry(body=b"z" * 40))  # 126: the first goes
    assert ids(journal.query(JournalQuery())) == [2, 3]
    journal.record(entry(body=b"w" * 500))  # alone larger than the bound
    kept = journal.query(JournalQuery())[-1]
    assert (kept.id, kept.request_body, kept.response_body) == (4, b"", b"")
    assert journal.stats()["bytes"] == 84


def test_size_zero_records_nothing() -> None:
    journal = Journal(max_entries=0)
    journal.record(entry())
    assert not journal.enabled
    assert journal.query(JournalQuery()) == []


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Journal(max_entries=-1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (JournalQuery(operation="MeterUsage"), [2]),
        (JournalQuery(product_code="prod-b"), [2, 3]),
        (JournalQuery(access_key_id="AKIA2"), [3]),
        (JournalQuery(status=400), [3]),
        (JournalQuery(error_type="ThrottlingException"), [3]),
        (JournalQuery(since=200.0), [2, 3]),
        (JournalQuery(until=300.0), [1, 2]),
        (JournalQuery(since=200.0, until=300.0), [2]),
        (JournalQuery(operation="BatchMeterUsage", status=200), [1]),
    ],
)
def test_filters(query: JournalQuery, expected: list[int]) -> None:
    journal = Journal()
    journal.record(entry(time=100.0))
    journal.record(entry(time=200.0, operation="MeterUsage", product="prod-b"))
    journal.record(
        entry(
            time=300.0, product="prod-b", status=400, error_type="ThrottlingException", key="AKIA2"
        )
    )
    assert ids(journal.query(query)) == expected


def test_clear_keeps_counting_ids() -> None:
    journal = Journal()
    journal.record(entry())
    journal.clear()
    assert journal.query(JournalQuery()) == []
    journal.record(entry())
    assert ids(journal.query(JournalQuery())) == [2]


def test_concurrent_records_get_distinct_ids() -> None:
    journal = Journal(max_entries=10_000)

    def work() -> None:
        for _ in range(500):
            journal.record(entry())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ids(journal.query(JournalQuery(limit=10_000))) == list(range(1, 2001))


def test_reset_numbers_entries_from_one_again() -> None:
    journal = Journal(max_entries=1)
    journal.record(entry())
    journal.record(entry())
    journal.reset()
    journal.record(entry())
    assert ids(journal.query(JournalQuery())) == [1]
    assert journal.stats()["dropped"] == 0

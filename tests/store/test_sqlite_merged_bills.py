"""The SQLite writer's merged jobs (``store.sqlite_writer``): bills queued together run as one
call of their merge, in queue order, and answer as if committed one after the other; a merge
that fails is rolled back and each job runs alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marketmeter.store.ledger_rows import LedgerRow
from marketmeter.store.sqlite import SQLiteStore
from tests.store.ledger_keys import BILLED, outcome, row


async def in_one_group(store: SQLiteStore, calls: list[Any]) -> list[Any]:
    """Run ``calls`` (coroutines submitting writes) while the writer is held by another job, so
    all of them are queued when it takes its next group."""
    release = threading.Event()
    holding = store._writer.submit(lambda connection: release.wait(10))
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0.05)  # every call queued behind the held job
    release.set()
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    holding.result()
    return answers


def billed(path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(BILLED).fetchall()
    return [(account, record_id, quantity) for account, record_id, quantity in rows]


def test_a_key_twice_in_a_group_is_billed_by_the_first_job_as_if_committed_in_order(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    asyncio.run(store.bill_rows([row(9, quantity=4)]))  # already billed before the group
    jobs: list[Sequence[LedgerRow]] = [
        [row(1), row(2)],
        [row(2, quantity=5), row(3)],  # key 2 again, another quantity: DuplicateRecord
        [row(1, record_id="id-retry"), row(9, quantity=4, record_id="id-again")],  # retries
        [row(4), row(4, quantity=2)],  # a key twice in one job
        [row(5), row(6)],
    ]
    answers = asyncio.run(in_one_group(store, [store.bill_rows(rows) for rows in jobs]))
    store.close_now()
    assert answers == [
        [outcome(1), outcome(2)],
        [outcome(2, inserted=False), outcome(3)],
        [outcome(1, inserted=False), outcome(9, quantity=4, inserted=False)],
        [outcome(4), outcome(4, inserted=False)],
        [outcome(5), outcome(6)],
    ]
    assert billed(tmp_path / "l.db") == [
        ("000000000009", "id-9-4", 4_000_000),
        *((f"{n:012d}", f"id-{n}-1", 1_000_000) for n in (1, 2, 3, 4, 5, 6)),
    ]


def test_a_group_of_new_keys_is_one_merge_and_every_job_billed_whole(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    jobs = [[row(1), row(2)], [row(3)], [row(4), row(5), row(6)]]
    answers = asyncio.run(in_one_group(store, [store.bill_rows(rows) for rows in jobs]))
    store.close_now()
    assert answers == [None, None, None]
    assert [account for account, _, _ in billed(tmp_path / "l.db")] == [
        f"{n:012d}" for n in range(1, 7)
    ]


def insert_seller(number: int) -> Any:
    def work(connection: sqlite3.Connection) -> int:
        connection.execute(
            "INSERT INTO sellers (account_id, name) VALUES (?, 'x')", (f"{number:012d}",)
        )
        if number == 3:
            raise RuntimeError("job 3 fails")
        return number

    return work


def test_jobs_of_one_merge_get_one_call_and_a_failing_merge_leaves_each_job_alone(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    writer = store._writer
    calls: list[list[int]] = []

    def merge(connection: sqlite3.Connection, numbers: list[int]) -> list[int]:
        calls.append(numbers)
        for number in numbers:
            insert_seller(number)(connection)  # job 3 fails: the whole merge is rolled back
        return numbers

    def submit(number: int) -> Any:
        return writer.submit_async(insert_seller(number), merge=merge, payload=number)

    async def together() -> list[Any]:
        return await in_one_group(store, [submit(1), submit(2)])

    assert asyncio.run(together()) == [1, 2]
    assert calls == [[1, 2]]

    async def with_a_failure() -> list[Any]:
        return await in_one_group(store, [submit(4), submit(3), submit(5)])

    answers = asyncio.run(with_a_failure())
    store.close_now()
    assert calls == [[1, 2], [4, 3, 5]]
    assert answers[0::2] == [4, 5]
    assert isinstance(answers[1], RuntimeError)
    assert str(answers[1]) == "job 3 fails"
    with sqlite3.connect(tmp_path / "l.db") as connection:
        sellers = connection.execute("SELECT account_id FROM sellers ORDER BY 1").fetchall()
    assert sellers == [(f"{n:012d}",) for n in (1, 2, 4, 5)]


def test_a_group_over_one_statement_is_billed_whole_with_its_repeated_keys(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    jobs = [[row(n) for n in range(1000 * j, 1000 * j + 1000)] for j in range(3)]  # 3 statements
    jobs.append([row(2500, quantity=2), row(3000)])  # key 2500 is the third job's
    answers = asyncio.run(in_one_group(store, [store.bill_rows(rows) for rows in jobs]))
    store.close_now()
    assert answers[:3] == [[outcome(n) for n in range(1000 * j, 1000 * j + 1000)] for j in range(3)]
    assert answers[3] == [outcome(2500, inserted=False), outcome(3000)]
    assert len(billed(tmp_path / "l.db")) == 3001

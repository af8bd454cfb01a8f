"""PostgreSQL's group commit of billing (``store.postgres_biller``) on a real PostgreSQL: a
group's jobs answered as if committed one after the other (a key twice in a group bills once),
each job's outcomes in its own order, a failing job isolated from the rest of its group, and
requests in flight at once on a store billed in fewer statements than requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from marketmeter.metering.types import LedgerOutcome
from marketmeter.store.ledger_rows import LedgerRow
from marketmeter.store.postgres import PostgresStore
from marketmeter.store.postgres_biller import bill_group
from tests.conftest import OpenStore
from tests.store.ledger_keys import BILLED, outcome, row

postgresql = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def billed(url: str) -> list[tuple[str, str, int]]:
    """The ledger's rows in the order they were written: account, id, quantity (micros)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(BILLED).fetchall()
    return [(account, record_id, quantity) for account, record_id, quantity in rows]


@pytest.fixture
def url(store_url: str, open_test_store: OpenStore) -> str:
    open_test_store(store_url).close_now()  # the schema
    return store_url


def connecting(url: str) -> Any:
    """``bill_group``'s ``connect``: a new autocommit connection each time."""

    @contextlib.contextmanager
    def connect() -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(url, autocommit=True) as connection:
            yield connection

    return connect


@postgresql
def test_a_group_of_new_keys_is_one_statement_and_every_job_billed_whole(url: str) -> None:
    jobs = [[row(1), row(2)], [row(3)], [row(4), row(5), row(6)]]
    assert bill_group(connecting(url), jobs) == [(None, None)] * 3
    assert [account for account, _, _ in billed(url)] == [f"{n:012d}" for n in range(1, 7)]


@postgresql
def test_a_key_twice_in_a_group_is_billed_by_the_first_job_as_if_committed_in_order(
    url: str,
) -> None:
    bill_group(connecting(url), [[row(9, quantity=4)]])  # already billed before the group
    jobs: list[Sequence[LedgerRow]] = [
        [row(1), row(2)],
        [row(2, quantity=5), row(3)],  # key 2 again, another quantity: DuplicateRecord
        [row(1, record_id="id-retry"), row(9, quantity=4, record_id="id-again")],  # retries
        [row(4), row(4, quantity=2)],  # a key twice in one job
    ]
    assert bill_group(connecting(url), jobs) == [
        ([outcome(1), outcome(2)], None),
        ([outcome(2, inserted=False), outcome(3)], None),
        ([outcome(1, inserted=False), outcome(9, quantity=4, inserted=False)], None),
        ([outcome(4), outcome(4, inserted=False)], None),
    ]
    assert billed(url) == [
        ("000000000009", "id-9-4", 4_000_000),
        ("000000000001", "id-1-1", 1_000_000),
        ("000000000002", "id-2-1", 1_000_000),
        ("000000000003", "id-3-1", 1_000_000),
        ("000000000004", "id-4-1", 1_000_000),
    ]


@postgresql
def test_a_failing_job_fails_alone_and_the_rest_of_its_group_is_billed_once(url: str) -> None:
    jobs = [
        [row(1), row(2)],
        [row(3), row(4)],
        [row(5), row(6, quantity=2**62)],  # 2**62 * 10**6 micros: out of bigint's range
        [row(7), row(2)],  # key 2 after job 1's: a retry's answer
    ]
    results = bill_group(connecting(url), jobs)
    assert [result for result, _ in results] == [
        None,
        None,
        None,
        [outcome(7), outcome(2, inserted=False)],
    ]
    [first, second, third, fourth] = [error for _, error in results]
    assert (first, second, fourth) == (None, None, None)
    assert isinstance(third, psycopg.errors.NumericValueOutOfRange)
    assert str(third).startswith("bigint out of range")
    assert [account for account, _, _ in billed(url)] == [f"{n:012d}" for n in (1, 2, 3, 4, 7)]


@postgresql
def test_requests_in_flight_together_share_statements_and_get_their_own_answers(
    store_url: str, open_test_store: OpenStore
) -> None:
    store = open_test_store(store_url)
    assert isinstance(store, PostgresStore)

    async def requests() -> list[list[LedgerOutcome] | None]:
        calls = [store.bill_rows([row(2 * n), row(2 * n + 1)]) for n in range(40)]
        calls.append(store.bill_rows([row(1, quantity=3)]))  # the first call's key again
        return await asyncio.gather(*calls)

    answers = asyncio.run(requests())
    assert store._biller.groups < 41
    for n, answer in enumerate(answers[1:-1], start=1):
        assert answer in (None, [outcome(2 * n), outcome(2 * n + 1)])
    # two requests in flight at once with one key: whichever committed first bills it
    first, again = answers[0], answers[-1]
    if again in (None, [outcome(1, quantity=3)]):
        assert first == [outcome(0), outcome(1, quantity=3, inserted=False)]
    else:
        assert first in (None, [outcome(0), outcome(1)])
        assert again == [outcome(1, inserted=False)]
    assert len(billed(store_url)) == 80


def test_a_database_out_of_reach_fails_the_group_at_once_not_job_by_job() -> None:
    tries = []

    @contextlib.contextmanager
    def unreachable() -> Iterator[psycopg.Connection[Any]]:
        tries.append(1)
        raise psycopg.OperationalError("connection refused")
        yield  # pragma: no cover

    results = bill_group(unreachable, [[row(1)], [row(2)], [row(3)]])
    assert [outcome for outcome, _ in results] == [None, None, None]
    assert [str(error) for _, error in results] == ["connection refused"] * 3
    assert len(tries) == 1

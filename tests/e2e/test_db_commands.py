"""``marketmeter db migrate`` and ``marketmeter db copy`` end to end, as subprocesses: on a
fresh PostgreSQL database and a SQLite file, against an unreachable PostgreSQL, and a SQLite
ledger that a real server billed into copied to PostgreSQL, then served from there. These run
on both backends whatever ``MARKETMETER_TEST_DB`` says: the source is always a SQLite file and
the target a database of the shared test PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest

from marketmeter.store.migrations import migrations_for
from tests.e2e.buyers import ALICE_KEY, admin, buyer_client
from tests.e2e.cli_runner import mm
from tests.e2e.conftest import make_client
from tests.e2e.server_process import CATALOG, ServerProcess
from tests.e2e.wire_records import record
from tests.ports import free_port
from tests.postgres_server import PostgresServer, shared_server

pytestmark = pytest.mark.e2e

SCHEMA = migrations_for("sqlite")[-1].version  # the newest schema version

ALICE_LEGACY = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000001"
ALICE_CA = "arn:aws:license-manager::444455556666:license:l-a0000000000000000000000000000002"


def where(url: str) -> str:
    """``host:port/dbname`` of a test PostgreSQL URL, as ``describe()`` prints it."""
    return url.removeprefix("postgresql://postgres@")


@pytest.fixture
def postgres() -> PostgresServer:
    return shared_server()


# --- db migrate ----------------------------------------------------------------------------


def test_migrate_a_fresh_postgresql_database(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.fresh_database()

    first = mm("db", "migrate", "--db", url, cwd=tmp_path)
    again = mm("db", "migrate", "--db", url, cwd=tmp_path)

    line = f"PostgreSQL {where(url)} (synchronous_commit=on): schema version {SCHEMA}\n"
    assert (first.returncode, first.stdout, first.stderr) == (0, line, "")
    assert (again.returncode, again.stdout, again.stderr) == (0, line, "")
    assert where(url).startswith(f"127.0.0.1:{postgres.port}/t_")
    with psycopg.connect(url) as connection:
        applied = connection.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert [version for version, _ in applied] == [m.version for m in migrations_for("postgresql")]


def test_migrate_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    missing = mm("db", "migrate", "--db", str(db), cwd=tmp_path)
    assert (missing.returncode, missing.stderr.split(": ", 2)[2]) == (
        1,
        "no ledger there: check the path, run the command where `marketmeter serve` keeps its "
        "marketmeter.db, or give --endpoint URL\n",
    )
    assert not db.exists()  # migrate never creates a ledger
    sqlite3.connect(db).close()  # an empty file: migrating makes it a ledger

    result = mm("db", "migrate", "--db", str(db), cwd=tmp_path)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"SQLite {db} (WAL, synchronous=FULL): schema version {SCHEMA}\n"
    assert db.exists()


def test_migrate_an_unreachable_postgresql_fails_at_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/nothing"

    started = time.monotonic()
    result = mm("db", "migrate", "--db", url, cwd=tmp_path)
    elapsed = time.monotonic() - started

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: --db {url}: cannot connect to PostgreSQL: connection failed: connection to "
        f'server at "127.0.0.1", port {port} failed: Connection refused '
        "Is the server running on that host and accepting TCP/IP connections?\n"
    )
    # Refused at once, not retried until the 10-second connect timeout.
    assert elapsed < 10, f"took {elapsed:.1f}s"


# --- db copy -------------------------------------------------------------------------------


def usage(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = admin(server.url, "GET", "/_marketmeter/usage?limit=100000")
    assert status == 200, body
    records: list[dict[str, Any]] = body["records"]
    return records


def token_list(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = admin(server.url, "GET", "/_marketmeter/tokens")
    assert status == 200, body
    tokens: list[dict[str, Any]] = body["tokens"]
    return tokens


def key_list(server: ServerProcess) -> list[dict[str, Any]]:
    status, body = admin(server.url, "GET", "/_marketmeter/keys")
    assert status == 200, body
    keys: list[dict[str, Any]] = body["keys"]
    return keys


def public_key(server: ServerProcess, version: int) -> str:
    status, pem = admin(server.url, "GET", f"/_marketmeter/keys/{version}")
    assert status == 200, pem
    assert isinstance(pem, str)
    return pem


class Traffic:
    """What a seller and a buyer sent, so that it can be sent again after the copy."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.batch_records: list[dict[str, Any]] = [
            record(now, "cust-alice", "users", 5),
            record(now, "cust-bob", "api_calls", 9),
        ]
        self.ca_record = {
            "Timestamp": now,
            "CustomerAWSAccountId": "444455556666",
            "Dimension": "requests",
            "Quantity": 2,
            "LicenseArn": ALICE_CA,
        }

    def batch(self, server: ServerProcess) -> list[tuple[str, str | None]]:
        seller = make_client(server.url)
        legacy = seller.batch_meter_usage(
            ProductCode="prod-legacy", UsageRecords=self.batch_records
        )["Results"]
        ca = seller.batch_meter_usage(ProductCode="prod-ca", UsageRecords=[self.ca_record])[
            "Results"
        ]
        return [(r["Status"], r.get("MeteringRecordId")) for r in [*legacy, *ca]]

    def hourly(self, server: ServerProcess) -> str:
        instance = buyer_client(server.url, ALICE_KEY, session="i-copy-1")
        record_id: str = instance.meter_usage(
            ProductCode="prod-ami", Timestamp=self.now, UsageDimension="vcpu_hours", UsageQuantity=4
        )["MeteringRecordId"]
        return record_id

    def per_request(self, server: ServerProcess) -> str:
        instance = buyer_client(server.url, ALICE_KEY, session="i-copy-2")
        record_id: str = instance.meter_usage(
            ProductCode="prod-agent",
            Timestamp=self.now,
            UsageDimension="invocations",
            UsageQuantity=3,
            ClientToken="copy-order-1",
        )["MeteringRecordId"]
        return record_id

    def register(self, server: ServerProcess) -> str:
        task = buyer_client(server.url, ALICE_KEY, session="task-copy-1")
        signature: str = task.register_usage(
            ProductCode="prod-container", PublicKeyVersion=1, Nonce="copy-nonce"
        )["Signature"]
        return signature

    def resolve(self, server: ServerProcess, token: str) -> dict[str, Any]:
        response = dict(make_client(server.url).resolve_customer(RegistrationToken=token))
        assert response.pop("ResponseMetadata")["HTTPStatusCode"] == 200
        return response


@pytest.fixture
def billed_sqlite(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on a SQLite file, whatever the backend switch says (stopped by the test)."""
    db = tmp_path / "ledger.db"
    server = ServerProcess(db, CATALOG, db_url=str(db))
    try:
        yield server.start()
    finally:
        server.stop()


def test_copy_a_billed_sqlite_ledger_to_postgresql_and_serve_from_it(
    billed_sqlite: ServerProcess, postgres: PostgresServer, now: int, tmp_path: Path
) -> None:
    source = billed_sqlite
    traffic = Traffic(now)
    billed = traffic.batch(source)
    hourly = traffic.hourly(source)
    per_request = traffic.per_request(source)
    signature = traffic.register(source)
    status, minted = admin(
        source.url,
        "POST",
        "/_marketmeter/tokens",
        {"productCode": "prod-ca", "buyerAccountId": "777788889999"},
    )
    assert status == 201, minted
    from_catalog = next(t["token"] for t in token_list(source) if t["licenseArn"] == ALICE_LEGACY)
    resolved = [traffic.resolve(source, token) for token in (minted["token"], from_catalog)]
    before: dict[str, Any] = {
        "usage": usage(source),
        "tokens": token_list(source),
        "keys": key_list(source),
        "pem": public_key(source, 1),
    }
    assert [status for status, _ in billed] == ["Success"] * 3
    assert len(before["usage"]) == 5
    status, updated = admin(
        source.url, "POST", f"/_marketmeter/agreements/{ALICE_CA}/entitlement-update", {}
    )
    assert status == 200, updated
    status, events = admin(source.url, "GET", "/_marketmeter/events")
    assert (status, len(events["events"])) == (200, 1)
    assert source.stop() == 0
    target = postgres.fresh_database()

    copied = mm("db", "copy", "--from", source.db_url, "--to", target, cwd=tmp_path)

    assert (copied.returncode, copied.stderr) == (0, ""), copied.stderr
    assert copied.stdout == (
        "copied 2 sellers, 6 products, 7 buyers, 16 agreements, 6 registration_tokens, "
        "1 signing_keys, 1 container_registrations, 1 request_claims, 5 usage_records, "
        "1 lifecycle_events, 0 event_deliveries, 0 delivery_attempts, 0 sns_subscriptions\n"
        f"  from SQLite {source.db_url} (WAL, synchronous=FULL)\n"
        f"  to   PostgreSQL {where(target)} (synchronous_commit=on)\n"
    )

    # Served from PostgreSQL: the same ledger, the same answers to the same retries.
    node = ServerProcess(tmp_path / "pg-node.db", None, db_url=target).start()
    try:
        assert "  ledger:  PostgreSQL " in node.output()
        assert "catalog already in the database" in node.output()
        assert usage(node) == before["usage"]
        assert admin(node.url, "GET", "/_marketmeter/events") == (200, events)
        by_token = sorted(token_list(node), key=lambda t: str(t["token"]))
        assert by_token == sorted(before["tokens"], key=lambda t: str(t["token"]))
        assert key_list(node) == before["keys"]
        assert public_key(node, 1) == before["pem"]
        assert traffic.batch(node) == billed  # identical retries: the first ids
        assert traffic.hourly(node) == hourly
        assert traffic.per_request(node) == per_request
        assert [traffic.resolve(node, t) for t in (minted["token"], from_catalog)] == resolved
        again = traffic.register(node)
        assert jwt.decode(again, before["pem"], algorithms=["PS256"])["nonce"] == "copy-nonce"
        assert jwt.decode(signature, public_key(node, 1), algorithms=["PS256"])["nonce"] == (
            "copy-nonce"
        )
        different = make_client(node.url).batch_meter_usage(
            ProductCode="prod-legacy",
            UsageRecords=[{**traffic.batch_records[0], "Quantity": 6}],
        )["Results"]
        assert [r["Status"] for r in different] == ["DuplicateRecord"]
        assert usage(node) == before["usage"]  # nothing billed twice
    finally:
        node.stop()

    # A second copy into the same ledger is refused, and changes nothing.
    refused = mm("db", "copy", "--from", source.db_url, "--to", target, cwd=tmp_path)

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "Error: the target already holds 5 billed record(s); copy into an empty ledger\n"
    )
    with psycopg.connect(target) as connection:
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM usage_records), (SELECT count(*) FROM request_claims), "
            "(SELECT count(*) FROM registration_tokens), (SELECT count(*) FROM signing_keys)"
        ).fetchone()
    assert counts == (5, 1, 6, 1)


def test_copy_keeps_the_order_tokens_are_listed_in(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """``token list`` shows the newest first, tokens of one second in the order they were
    minted; a copied ledger lists them as the original did."""
    db = tmp_path / "ledger.db"
    applied = mm("catalog", "apply", str(CATALOG), "--db", str(db), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr  # 5 tokens, minted in one second
    target = postgres.fresh_database()
    copied = mm("db", "copy", "--from", str(db), "--to", target, cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr

    listed = [
        json.loads(mm("token", "list", "--json", "--db", url, cwd=tmp_path).stdout)["tokens"]
        for url in (str(db), target)
    ]

    assert len(listed[0]) == 5
    assert [t["token"] for t in listed[1]] == [t["token"] for t in listed[0]]
    assert listed[1] == listed[0]

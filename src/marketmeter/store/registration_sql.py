"""The SQL of registration state, for every backend: registration tokens (ResolveCustomer),
signing key pairs and registered tasks (RegisterUsage). Plain functions of a
``SqlConnection``; each backend runs the reads and the writes its own way."""

from __future__ import annotations

from collections.abc import Sequence

from marketmeter.metering.types import ContainerRegistration, RegistrationToken, SigningKey
from marketmeter.store.base import TokenQuery
from marketmeter.store.bulk_sql import insert_rows
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "add_signing_key",
    "container_registration",
    "insert_tokens",
    "register_container",
    "registration_token",
    "registration_tokens",
    "signing_keys",
]

_TOKEN_COLUMNS = "token, product_code, buyer_account_id, license_arn, issued_at, offer_type"


def _token(row: tuple[str, str, str, str, float, str | None]) -> RegistrationToken:
    return RegistrationToken(*row)


def insert_tokens(connection: SqlConnection, tokens: Sequence[RegistrationToken]) -> None:
    insert_rows(
        connection,
        f"INSERT INTO registration_tokens ({_TOKEN_COLUMNS})",
        [
            (t.value, t.product_code, t.buyer_account_id, t.license_arn, t.issued_at, t.offer_type)
            for t in tokens
        ],
    )


def registration_token(connection: SqlConnection, value: str) -> RegistrationToken | None:
    row = connection.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM registration_tokens WHERE token = ?", (value,)
    ).fetchone()
    return _token(row) if row is not None else None


def claim_first_resolution(connection: SqlConnection, value: str, at: float) -> bool:
    """Note that token ``value`` is resolved at ``at``; True if it had never been (one
    statement, so two concurrent resolutions cannot both be first)."""
    row = connection.execute(
        "UPDATE registration_tokens SET resolved_at = ? WHERE token = ? AND resolved_at IS NULL "
        "RETURNING token",
        (at, value),
    ).fetchone()
    return row is not None


def registration_tokens(connection: SqlConnection, query: TokenQuery) -> list[RegistrationToken]:
    clauses: list[str] = []
    params: list[object] = []
    if query.product_code is not None:
        clauses.append("product_code = ?")
        params.append(query.product_code)
    if query.buyer_account_id is not None:
        clauses.append("buyer_account_id = ?")
        params.append(query.buyer_account_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = connection.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM registration_tokens {where} "
        f"ORDER BY issued_at DESC, {connection.insertion_order} DESC LIMIT ?",
        [*params, query.limit],
    ).fetchall()
    return [_token(row) for row in rows]


def signing_keys(connection: SqlConnection) -> list[SigningKey]:
    rows = connection.execute(
        "SELECT version, private_key_pem, public_key_pem, created_at, retired_at "
        "FROM signing_keys ORDER BY version"
    ).fetchall()
    return [SigningKey(*row) for row in rows]


def add_signing_key(
    connection: SqlConnection, key: SigningKey, retire_previous_at: float | None
) -> bool:
    inserted = connection.execute(
        "INSERT INTO signing_keys (version, private_key_pem, public_key_pem, created_at, "
        "retired_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (version) DO NOTHING RETURNING version",
        (key.version, key.private_key_pem, key.public_key_pem, key.created_at, key.retired_at),
    ).fetchone()
    if inserted is None:
        return False
    if retire_previous_at is not None:
        connection.execute(
            "UPDATE signing_keys SET retired_at = ? WHERE version < ? AND retired_at IS NULL",
            (retire_previous_at, key.version),
        )
    return True


def container_registration(
    connection: SqlConnection, product_code: str, buyer_account_id: str, task: str
) -> ContainerRegistration | None:
    row = connection.execute(
        "SELECT product_code, buyer_account_id, task, registered_at FROM container_registrations "
        "WHERE product_code = ? AND buyer_account_id = ? AND task = ?",
        (product_code, buyer_account_id, task),
    ).fetchone()
    return ContainerRegistration(*row) if row is not None else None


def register_container(connection: SqlConnection, registration: ContainerRegistration) -> None:
    connection.execute(
        "INSERT INTO container_registrations (product_code, buyer_account_id, task, "
        "registered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            registration.product_code,
            registration.buyer_account_id,
            registration.task,
            registration.registered_at,
        ),
    )

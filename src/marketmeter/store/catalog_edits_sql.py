"""Editing the catalog entry by entry, for every backend: deletions and upserts in one
transaction (the admin API's catalog routes).

Written once against ``store.sql_connection.SqlConnection``. ``edit_catalog`` deletes first
(access keys, products, sellers, buyers, in that order), then upserts ``edit.upserts`` with
``catalog_sql.write_catalog``, which bumps the catalog version so every node reloads. An entry
something still refers to is not deleted: ``CatalogReferenceError`` names what refers to it,
and the caller's transaction rolls back, so nothing of the edit is applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketmeter.store.base import CatalogConflictError, CatalogEdit, CatalogReferenceError
from marketmeter.store.catalog_sql import write_catalog
from marketmeter.store.sql_connection import SqlConnection

__all__ = ["edit_catalog"]

_NAMED = 5  # referring entries named in an error; the rest are counted


def edit_catalog(connection: SqlConnection, edit: CatalogEdit) -> int:
    """Apply ``edit`` inside the caller's transaction, which must serialize catalog writers
    (SQLite's single writer; PostgreSQL: the ``catalog_state`` row lock taken here). Returns
    the new catalog version. Deleting what does not exist is not an error."""
    lock = " FOR UPDATE" if connection.dialect == "postgresql" else ""
    connection.execute(f"SELECT version FROM catalog_state WHERE id = 1{lock}")
    _check_expectations(connection, edit)
    connection.executemany(
        "DELETE FROM access_keys WHERE access_key_id = ?", [(k,) for k in edit.delete_access_keys]
    )
    for offer in edit.delete_offers:
        accepted = _column(
            connection,
            "SELECT license_arn FROM agreements WHERE offer_id = ? ORDER BY license_arn",
            offer,
        )
        if accepted:
            raise CatalogReferenceError(f"offer {offer} has agreements: {_names(accepted)}")
        connection.execute("DELETE FROM offers WHERE offer_id = ?", (offer,))
    for code in edit.delete_products:
        _refuse_if_referred(connection, f"product {code}", "product_code", code)
        connection.execute("DELETE FROM dimensions WHERE product_code = ?", (code,))
        connection.execute("DELETE FROM offers WHERE product_code = ?", (code,))
        connection.execute("DELETE FROM products WHERE product_code = ?", (code,))
    for account in edit.delete_sellers:
        products = _column(
            connection,
            "SELECT product_code FROM products WHERE seller_account_id = ? ORDER BY product_code",
            account,
        )
        if products:
            raise CatalogReferenceError(f"seller {account} has products: {_names(products)}")
        _delete_account(connection, "seller", account)
    for account in edit.delete_buyers:
        _refuse_if_referred(connection, f"buyer {account}", "buyer_account_id", account)
        _delete_account(connection, "buyer", account)
    return write_catalog(connection, edit.upserts)


# (table, its key column, the entry's name in messages, the field a refusal names)
_ENTRIES = {
    "sellers": ("account_id", "seller", "account_id"),
    "buyers": ("account_id", "buyer", "account_id"),
    "products": ("product_code", "product", "product_code"),
    "offers": ("offer_id", "offer", "offer_id"),
}


def _check_expectations(connection: SqlConnection, edit: CatalogEdit) -> None:
    """What the caller saw in its snapshot must still hold: a replaced entry still exists (a
    404 otherwise: never resurrected by the upsert), a new one still does not (a 409)."""
    for table, value in edit.expect_existing:
        column, name, field = _ENTRIES[table]
        if not _column(connection, f"SELECT {column} FROM {table} WHERE {column} = ?", value):
            raise CatalogConflictError(field, f"no {name} with {column} {value}", missing=True)
    for table, value in edit.expect_new:
        column, name, field = _ENTRIES[table]
        if _column(connection, f"SELECT {column} FROM {table} WHERE {column} = ?", value):
            raise CatalogConflictError(field, f"{name} {value} already exists")


def _refuse_if_referred(connection: SqlConnection, what: str, column: str, value: str) -> None:
    """Agreements and registration tokens refer to products and buyers."""
    agreements = _column(
        connection,
        f"SELECT license_arn FROM agreements WHERE {column} = ? ORDER BY license_arn",
        value,
    )
    if agreements:
        raise CatalogReferenceError(f"{what} has agreements: {_names(agreements)}")
    tokens = _column(
        connection,
        f"SELECT token FROM registration_tokens WHERE {column} = ? ORDER BY token",
        value,
    )
    if tokens:
        raise CatalogReferenceError(f"{what} has registration tokens: {_names(tokens)}")


def _delete_account(connection: SqlConnection, kind: str, account: str) -> None:
    connection.execute(
        "DELETE FROM access_keys WHERE owner_kind = ? AND account_id = ?", (kind, account)
    )
    connection.execute(f"DELETE FROM {kind}s WHERE account_id = ?", (account,))


def _column(connection: SqlConnection, sql: str, value: str) -> list[str]:
    return [str(row[0]) for row in connection.execute(sql, (value,)).fetchall()]


def _names(values: Sequence[str]) -> str:
    named = ", ".join(values[:_NAMED])
    rest = len(values) - _NAMED
    return f"{named} and {rest} more" if rest > 0 else named

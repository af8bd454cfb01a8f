"""The catalog's SQL, for every backend: write a ``Catalog`` (upsert, in bulk) and read it back
whole.

Written once against ``store.sql_connection.SqlConnection`` (``?`` placeholders); the SQL is
the common ground of SQLite and PostgreSQL (``INSERT ... ON CONFLICT``). A catalog is written
table by table, one ``executemany`` per table and chunk, in the order of ``CATALOG_TABLES``
(what an entry refers to first); an upsert whose row is already stored as is writes nothing
(the ``DO UPDATE ... WHERE`` of each table), so a catalog applied again costs reads only.

Adding a catalog field or table is one declared entry here: a column (and its value in
``rows``) of the ``UpsertTable`` of its entry, or a new ``UpsertTable`` (a row per entry,
keyed by its first column) or ``ChildTable`` (an entry's list, replaced whole: deleted by its
parent key, inserted again) placed in ``CATALOG_TABLES`` after the tables it refers to;
``read_catalog`` reads it back. The rest of its way: the field of the entry's pydantic model
(``catalog/entries.py``), the domain value (``catalog/model.py``), built from the entry in
``catalog/checks.py`` (where checks across entries go), and a migration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson

from marketmeter.catalog.checks import KnownKeys, OfferKeys, ProductKeys
from marketmeter.catalog.entries import stored_targets, target_entry
from marketmeter.catalog.model import (
    AcceptedConfiguration,
    AccessKey,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    Entitlement,
    EntitlementValue,
    Integration,
    Offer,
    OfferTerm,
    PricingModel,
    Product,
    ProductKind,
    Seller,
)
from marketmeter.metering.types import RegistrationToken
from marketmeter.store.base import CatalogConflictError
from marketmeter.store.bulk_sql import insert_rows
from marketmeter.store.registration_sql import insert_tokens
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "AGREEMENT_COLUMNS",
    "CATALOG_TABLES",
    "ChildTable",
    "UpsertTable",
    "apply_catalog",
    "apply_catalog_chunks",
    "catalog_digest",
    "catalog_keys",
    "catalog_version",
    "check_catalog",
    "read_catalog",
    "write_catalog",
]

Row = tuple[object, ...]
_IN_CHUNK = 500  # values of one ``IN (...)`` list


@dataclass(frozen=True)
class UpsertTable:
    """A table with a row per entry: inserted, or updated where a stored row differs."""

    name: str
    columns: tuple[str, ...]  # the key first
    rows: Callable[[Catalog], Iterable[Row]]
    key: int = 1  # how many leading columns are the key

    def write(self, connection: SqlConnection, catalog: Catalog) -> None:
        rows = list(self.rows(catalog))
        head = f"INSERT INTO {self.name} ({', '.join(self.columns)})"
        if connection.dialect == "postgresql" and self.key == 1:
            new, rows = self._changed(connection, rows)
            insert_rows(connection, head, new)  # no stored row to meet: a plain COPY
        key, rest = self.columns[: self.key], self.columns[self.key :]
        differs = " IS DISTINCT FROM " if connection.dialect == "postgresql" else " IS NOT "
        insert_rows(
            connection,
            head,
            rows,
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in rest)
            + " WHERE "
            + " OR ".join(f"{self.name}.{c}{differs}excluded.{c}" for c in rest),
            key=self.key,
        )

    def _changed(self, connection: SqlConnection, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """The rows whose key is not stored, and those stored otherwise. PostgreSQL locks
        (and logs) every row an upsert meets, even one its ``WHERE`` leaves alone, so
        unchanged rows are left out before; new ones need no upsert (the caller's
        transaction holds the catalog's lock: no other writer adds them meanwhile)."""
        rows = list({row[0]: row for row in rows}.values())  # a key listed twice: the last
        stored = {
            row[0]: row
            for row in _rows_where(
                connection,
                f"SELECT {', '.join(self.columns)} FROM {self.name}",
                self.columns[0],
                [str(row[0]) for row in rows],
            )
        }
        new = [row for row in rows if row[0] not in stored]
        return new, [row for row in rows if row[0] in stored and stored[row[0]] != tuple(row)]


@dataclass(frozen=True)
class ChildTable:
    """An entry's list (a product's dimensions): the parent's rows replaced whole."""

    name: str
    parent: str  # the column naming the parent entry
    columns: tuple[str, ...]  # the parent column first
    parents: Callable[[Catalog], Iterable[str]]
    rows: Callable[[Catalog], Iterable[Row]]

    def write(self, connection: SqlConnection, catalog: Catalog) -> None:
        parents = [(parent,) for parent in self.parents(catalog)]
        if not parents:
            return
        if connection.dialect == "postgresql":  # one statement: a round trip costs more
            connection.execute(
                f"DELETE FROM {self.name} WHERE {self.parent} = ANY(?::text[])",
                (_text_array(parent for (parent,) in parents),),
            )
        else:
            connection.executemany(f"DELETE FROM {self.name} WHERE {self.parent} = ?", parents)
        insert_rows(
            connection,
            f"INSERT INTO {self.name} ({', '.join(self.columns)})",
            list(self.rows(catalog)),
        )


def _key_rows(kind: str, owners: Iterable[Seller | Buyer]) -> Iterable[Row]:
    return (
        (key.access_key_id, key.secret_access_key, kind, owner.account_id)
        for owner in owners
        for key in owner.access_keys
    )


_ACCESS_KEY_COLUMNS = ("access_key_id", "secret_access_key", "owner_kind", "account_id")

# Every table a catalog writes, in the order it writes them (see the module's docstring).
# The agreements table's columns, in the order catalog writes and snapshots (snapshots_sql) use.
AGREEMENT_COLUMNS = (
    "license_arn",
    "buyer_account_id",
    "product_code",
    "state",
    "starts_at",
    "ends_at",
    "free_trial",
    "pending_since",
    "offer_id",
    "configuration",
)

CATALOG_TABLES: tuple[UpsertTable | ChildTable, ...] = (
    UpsertTable(
        "sellers", ("account_id", "name"), lambda c: ((s.account_id, s.name) for s in c.sellers)
    ),
    UpsertTable("access_keys", _ACCESS_KEY_COLUMNS, lambda c: _key_rows("seller", c.sellers)),
    UpsertTable(
        "products",
        (
            "product_code",
            "seller_account_id",
            "kind",
            "integration",
            "name",
            "registration_url",
            "per_request_metering",
            "notification_targets",
            "pricing_model",
        ),
        lambda c: (
            (
                p.product_code,
                p.seller_account_id,
                p.kind.value,
                p.integration.value,
                p.name,
                p.registration_url,
                int(p.per_request_metering),
                _targets_json(p),
                p.pricing_model.value,
            )
            for p in c.products
        ),
    ),
    ChildTable(
        "dimensions",
        "product_code",
        ("product_code", "name", "position"),
        lambda c: (p.product_code for p in c.products),
        lambda c: ((p.product_code, d, i) for p in c.products for i, d in enumerate(p.dimensions)),
    ),
    ChildTable(
        "notification_urls",
        "product_code",
        ("product_code", "position", "url"),
        lambda c: (p.product_code for p in c.products),
        lambda c: (
            (p.product_code, i, url)
            for p in c.products
            for i, url in enumerate(p.notification_urls)
        ),
    ),
    UpsertTable(
        "buyers",
        ("account_id", "customer_identifier", "name"),
        lambda c: ((b.account_id, b.customer_identifier, b.name) for b in c.buyers),
    ),
    UpsertTable("access_keys", _ACCESS_KEY_COLUMNS, lambda c: _key_rows("buyer", c.buyers)),
    UpsertTable(
        "offers",
        ("offer_id", "product_code", "name", "buyers", "terms"),
        lambda c: (
            (
                o.offer_id,
                o.product_code,
                o.name,
                json.dumps(list(o.buyers)),
                json.dumps([[term.key, term.body] for term in o.terms]),
            )
            for o in c.offers
        ),
    ),
    UpsertTable(
        "agreements",
        AGREEMENT_COLUMNS,
        lambda c: (
            (
                a.license_arn,
                a.buyer_account_id,
                a.product_code,
                a.state.value,
                a.starts_at,
                a.ends_at,
                int(a.free_trial),
                a.pending_since,
                a.offer_id,
                _configuration_json(a.configuration),
            )
            for a in c.agreements
        ),
    ),
    ChildTable(
        "entitlements",
        "license_arn",
        ("license_arn", "dimension", "position", "value_type", "value", "expires_at"),
        lambda c: (a.license_arn for a in c.agreements),
        lambda c: (
            (a.license_arn, e.dimension, i, *_stored_value(e.value), e.expires_at)
            for a in c.agreements
            for i, e in enumerate(a.entitlements)
        ),
    ),
)


def _targets_json(product: Product) -> str:
    return orjson.dumps([target_entry(t) for t in product.notification_targets]).decode()


def _stored_value(value: EntitlementValue) -> tuple[str, str]:
    """An entitlement's value as (value_type, text); ``bool`` before ``int``, its subclass."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "integer", str(value)
    if isinstance(value, float):
        return "double", repr(value)
    return "string", value


def _read_value(value_type: str, text: str) -> EntitlementValue:
    if value_type == "boolean":
        return text == "true"
    if value_type == "integer":
        return int(text)
    if value_type == "double":
        return float(text)
    return text


def _configuration_json(configuration: AcceptedConfiguration) -> str | None:
    if configuration.empty:
        return None
    return json.dumps(
        {
            "selector": configuration.selector,
            "dimensions": [list(item) for item in configuration.dimensions],
            "autoRenew": configuration.auto_renew,
        }
    )


_NO_CONFIGURATION = AcceptedConfiguration()  # shared by every agreement without one (frozen)


def _configuration(text: str | None) -> AcceptedConfiguration:
    if not text:
        return _NO_CONFIGURATION
    raw = json.loads(text)
    return AcceptedConfiguration(
        raw.get("selector"),
        tuple((str(key), int(value)) for key, value in raw.get("dimensions", ())),
        raw.get("autoRenew"),
    )


def catalog_version(connection: SqlConnection) -> int:
    row = connection.execute("SELECT version FROM catalog_state WHERE id = 1").fetchone()
    return int(row[0])


def catalog_digest(connection: SqlConnection) -> str | None:
    """The digest of the catalog document last applied, if nothing changed the catalog since
    (its version is still the one that apply made)."""
    row = connection.execute(
        "SELECT source_digest FROM catalog_state WHERE id = 1 AND digest_version = version"
    ).fetchone()
    return None if row is None else row[0]


def _lock(connection: SqlConnection) -> None:
    lock = " FOR UPDATE" if connection.dialect == "postgresql" else ""
    connection.execute(f"SELECT version FROM catalog_state WHERE id = 1{lock}")


def apply_catalog(
    connection: SqlConnection, catalog: Catalog, tokens: Sequence[RegistrationToken]
) -> int:
    """Upsert ``catalog`` and issue ``tokens``, inside the caller's transaction, which must
    serialize catalog writers (SQLite's single writer; PostgreSQL: the ``catalog_state`` row
    lock taken here). A token for an agreement this catalog brings is issued only if the
    agreement is new, so two nodes applying one catalog at once mint one token per agreement;
    a token for an agreement the catalog does not carry (``subscribe`` reusing one) always is.
    Returns the new catalog version."""
    return apply_catalog_chunks(connection, [(catalog, tokens)])


def apply_catalog_chunks(
    connection: SqlConnection,
    chunks: Iterable[tuple[Catalog, Sequence[RegistrationToken]]],
    digest: str | None = None,
) -> int:
    """``apply_catalog`` for a catalog in parts, each checked and written in turn (an entry
    refers to what its part or an earlier one holds): whatever iterating ``chunks`` raises
    rolls the caller's transaction back, so a streamed document that turns out to have a
    problem applies nothing. ``digest`` names the document (``catalog_digest``). Returns the
    new catalog version."""
    _lock(connection)
    for catalog, tokens in chunks:
        brought = [agreement.license_arn for agreement in catalog.agreements]
        existing = _existing(connection, "agreements", "license_arn", brought)
        _write(connection, catalog)
        insert_tokens(
            connection,
            [t for t in tokens if t.license_arn not in existing or t.license_arn not in brought],
        )
    return _bump(connection, digest)


def _bump(connection: SqlConnection, digest: str | None) -> int:
    connection.execute(
        "UPDATE catalog_state SET version = version + 1, source_digest = ?, "
        "digest_version = version + 1 WHERE id = 1",
        (digest,),
    )
    return catalog_version(connection)


def _existing(
    connection: SqlConnection, table: str, column: str, values: Iterable[str]
) -> set[str]:
    """Which of ``values`` the table's ``column`` holds."""
    return {
        str(row[0])
        for row in _rows_where(connection, f"SELECT {column} FROM {table}", column, values)
    }


def _rows_where(
    connection: SqlConnection, select: str, column: str, values: Iterable[str]
) -> list[tuple[object, ...]]:
    """``select`` restricted to the rows whose ``column`` is one of ``values``: one query on
    PostgreSQL (``= ANY`` an array: a round trip costs more than the list), lists of
    ``_IN_CHUNK`` on SQLite (in the process: its lists stay short)."""
    wanted = list(dict.fromkeys(values))
    if not wanted:
        return []
    if connection.dialect == "postgresql":
        return [
            tuple(row)
            for row in connection.execute(
                f"{select} WHERE {column} = ANY(?::text[])", (_text_array(wanted),)
            )
        ]
    rows: list[tuple[object, ...]] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        part = wanted[start : start + _IN_CHUNK]
        rows.extend(
            tuple(row)
            for row in connection.execute(
                f"{select} WHERE {column} IN ({', '.join('?' for _ in part)})", part
            )
        )
    return rows


def _text_array(values: Iterable[str]) -> str:
    """PostgreSQL's text form of a ``text[]`` of ``values``: one string, joined in C
    (psycopg adapts a list element by element in Python: a tenth of a 20 k apply's CPU)."""
    items = list(values)
    joined = '","'.join(items)
    if "\\" in joined or '"' in joined:
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in items)
    return '{"' + joined + '"}' if items else "{}"


def check_catalog(connection: SqlConnection, catalog: Catalog) -> None:
    """Refuse, with ``CatalogConflictError``, an upsert of ``catalog`` that the stored catalog
    does not allow. Run inside the writing transaction, which serializes catalog writers, so
    what it decides still holds at the commit: an access key id belongs to one account (a key
    of another seller or buyer is never taken over); a product's seller, an agreement's buyer
    and product exist (in ``catalog`` or stored); no two buyers share a CustomerIdentifier.
    A handful of set queries whatever the catalog's size."""
    sellers = {seller.account_id for seller in catalog.sellers}
    buyers = {buyer.account_id for buyer in catalog.buyers}
    products = {product.product_code for product in catalog.products}
    for account in sorted(_existing(connection, "buyers", "account_id", sellers)):
        raise CatalogConflictError("account_id", f"account {account} is a buyer")
    for account in sorted(_existing(connection, "sellers", "account_id", buyers)):
        raise CatalogConflictError("account_id", f"account {account} is a seller")
    owners = [("seller", s.account_id, s.access_keys) for s in catalog.sellers] + [
        ("buyer", b.account_id, b.access_keys) for b in catalog.buyers
    ]
    wanted = {key.access_key_id: (kind, account) for kind, account, keys in owners for key in keys}
    for key_id, owner_kind, owner in _rows_where(
        connection,
        "SELECT access_key_id, owner_kind, account_id FROM access_keys",
        "access_key_id",
        wanted,
    ):
        if (owner_kind, owner) != wanted[str(key_id)]:
            raise CatalogConflictError(
                "access_key_id", f"{key_id} already belongs to account {owner}"
            )
    missing = _missing(
        connection,
        "sellers",
        "account_id",
        sellers,
        (p.seller_account_id for p in catalog.products),
    )
    for product in catalog.products:
        if product.seller_account_id in missing:
            raise CatalogConflictError(
                "seller",
                f"product {product.product_code}: no seller with account_id "
                f"{product.seller_account_id}",
            )
    identifiers = {
        b.customer_identifier: b.account_id
        for b in catalog.buyers
        if b.customer_identifier is not None
    }
    for identifier, holder in _rows_where(
        connection,
        "SELECT customer_identifier, account_id FROM buyers",
        "customer_identifier",
        identifiers,
    ):
        if holder != identifiers[str(identifier)]:
            raise CatalogConflictError(
                "customer_identifier",
                f"{identifier} is the CustomerIdentifier of buyer {holder}",
            )
    missing_buyers = _missing(
        connection, "buyers", "account_id", buyers, (a.buyer_account_id for a in catalog.agreements)
    )
    missing_products = _missing(
        connection,
        "products",
        "product_code",
        products,
        (a.product_code for a in catalog.agreements),
    )
    for agreement in catalog.agreements:
        buyer_id, code = agreement.buyer_account_id, agreement.product_code
        if buyer_id in missing_buyers:
            raise CatalogConflictError(
                "buyer_account_id",
                f"agreement {agreement.license_arn}: no buyer with account_id {buyer_id}",
            )
        if code in missing_products:
            raise CatalogConflictError(
                "product_code",
                f"agreement {agreement.license_arn}: no product with product_code {code}",
            )


def _missing(
    connection: SqlConnection, table: str, column: str, brought: set[str], referred: Iterable[str]
) -> set[str]:
    """What ``referred`` names that neither ``brought`` nor the table holds."""
    outside = {value for value in referred if value not in brought}
    return outside - _existing(connection, table, column, outside) if outside else set()


def _write(connection: SqlConnection, catalog: Catalog) -> None:
    check_catalog(connection, catalog)
    for table in CATALOG_TABLES:
        table.write(connection, catalog)


def write_catalog(connection: SqlConnection, catalog: Catalog) -> int:
    """Upsert every entry of ``catalog`` (inside the caller's transaction, after
    ``check_catalog``, which refuses what the stored catalog does not allow); bump the
    version."""
    _write(connection, catalog)
    return _bump(connection, None)


def catalog_keys(connection: SqlConnection) -> KnownKeys:
    """The stored catalog's keys, what a catalog being checked may refer to or clash with.
    A buyer's account id is one string wherever it is held (what a large catalog applied
    again holds grows with these keys)."""
    accounts: dict[str, str] = {}
    identifier_owners: dict[str, str] = {}
    for account, identifier in connection.execute(
        "SELECT account_id, customer_identifier FROM buyers"
    ):
        accounts[account] = account
        if identifier is not None:
            identifier_owners[identifier] = account
    return KnownKeys(
        sellers={row[0] for row in connection.execute("SELECT account_id FROM sellers")},
        products={
            row[0]: ProductKind(row[1])
            for row in connection.execute("SELECT product_code, kind FROM products")
        },
        product_keys=_product_keys(connection),
        offers={
            offer_id: OfferKeys(product, tuple(json.loads(buyers)))
            for offer_id, product, buyers in connection.execute(
                "SELECT offer_id, product_code, buyers FROM offers"
            )
        },
        buyers=set(accounts),
        key_owners={
            row[0]: accounts.get(row[1], row[1])
            for row in connection.execute("SELECT access_key_id, account_id FROM access_keys")
        },
        identifier_owners=identifier_owners,
        license_arns={row[0] for row in connection.execute("SELECT license_arn FROM agreements")},
    )


def _product_keys(connection: SqlConnection) -> dict[str, ProductKeys]:
    """What checking entitlements and offers needs of each stored product."""
    dimensions: dict[str, list[str]] = {}
    for code, name in connection.execute(
        "SELECT product_code, name FROM dimensions ORDER BY product_code, position"
    ):
        dimensions.setdefault(code, []).append(name)
    return {
        code: ProductKeys(tuple(dimensions.get(code, ())), PricingModel(pricing))
        for code, pricing in connection.execute("SELECT product_code, pricing_model FROM products")
    }


def read_catalog(connection: SqlConnection) -> Catalog:
    """The whole catalog, in a stable order."""
    keys: dict[tuple[str, str], list[AccessKey]] = {}
    for key_id, secret, kind, account in connection.execute(
        "SELECT access_key_id, secret_access_key, owner_kind, account_id FROM access_keys "
        "ORDER BY access_key_id"
    ):
        keys.setdefault((kind, account), []).append(AccessKey(key_id, secret))
    dimensions: dict[str, list[str]] = {}
    for code, name in connection.execute(
        "SELECT product_code, name FROM dimensions ORDER BY product_code, position"
    ):
        dimensions.setdefault(code, []).append(name)
    notification_urls: dict[str, list[str]] = {}
    for code, url in connection.execute(
        "SELECT product_code, url FROM notification_urls ORDER BY product_code, position"
    ):
        notification_urls.setdefault(code, []).append(url)
    sellers = tuple(
        Seller(account, name, tuple(keys.get(("seller", account), ())))
        for account, name in connection.execute(
            "SELECT account_id, name FROM sellers ORDER BY account_id"
        )
    )
    products = tuple(
        Product(
            product_code=code,
            seller_account_id=seller,
            kind=ProductKind(kind),
            dimensions=tuple(dimensions.get(code, ())),
            integration=Integration(integration),
            name=name,
            registration_url=url,
            per_request_metering=bool(per_request),
            notification_urls=tuple(notification_urls.get(code, ())),
            notification_targets=stored_targets(orjson.loads(targets)),
            pricing_model=PricingModel(pricing),
        )
        for code, seller, kind, integration, name, url, per_request, targets, pricing in (
            connection.execute(
                "SELECT product_code, seller_account_id, kind, integration, name, "
                "registration_url, per_request_metering, notification_targets, pricing_model "
                "FROM products ORDER BY product_code"
            )
        )
    )
    buyers = tuple(
        Buyer(account, identifier, name, tuple(keys.get(("buyer", account), ())))
        for account, identifier, name in connection.execute(
            "SELECT account_id, customer_identifier, name FROM buyers ORDER BY account_id"
        )
    )
    # an agreement's buyer and product are the very strings of the buyer's and the product's
    # entries, not copies of their own (the snapshot of a large catalog holds each once)
    shared = {buyer.account_id: buyer.account_id for buyer in buyers}
    shared.update((product.product_code, product.product_code) for product in products)
    entitlements: dict[str, list[Entitlement]] = {}
    for arn, dimension, value_type, value, expires_at in connection.execute(
        "SELECT license_arn, dimension, value_type, value, expires_at FROM entitlements "
        "ORDER BY license_arn, position"
    ):
        entitlements.setdefault(arn, []).append(
            Entitlement(dimension, _read_value(value_type, value), expires_at)
        )
    states = {state.value: state for state in AgreementState}
    agreements = tuple(
        Agreement(
            arn,
            shared.get(buyer, buyer),
            shared.get(product, product),
            states[state],
            starts_at,
            ends_at,
            bool(trial),
            pending_since,
            offer_id,
            tuple(entitlements.get(arn, ())),
            _configuration(configuration),
        )
        for (
            arn,
            buyer,
            product,
            state,
            starts_at,
            ends_at,
            trial,
            pending_since,
            offer_id,
            configuration,
        ) in connection.execute(
            "SELECT license_arn, buyer_account_id, product_code, state, starts_at, ends_at, "
            "free_trial, pending_since, offer_id, configuration FROM agreements "
            "ORDER BY license_arn"
        )
    )
    offers = tuple(
        Offer(
            offer_id,
            product,
            name,
            tuple(json.loads(buyers)),
            tuple(OfferTerm(key, body) for key, body in json.loads(terms)),
        )
        for offer_id, product, name, buyers, terms in connection.execute(
            "SELECT offer_id, product_code, name, buyers, terms FROM offers ORDER BY offer_id"
        )
    )
    return Catalog(sellers, products, buyers, agreements, offers)

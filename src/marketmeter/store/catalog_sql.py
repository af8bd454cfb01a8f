"""The catalog's SQL, for every backend: write a ``Catalog`` (upsert) and read it back whole.

Written once against ``store.sql_connection.SqlConnection`` (``?`` placeholders); the SQL is
the common ground of SQLite and PostgreSQL (``INSERT ... ON CONFLICT``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson

from marketmeter.catalog.loader import stored_targets, target_entry
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
from marketmeter.store.registration_sql import insert_tokens
from marketmeter.store.sql_connection import SqlConnection

__all__ = [
    "apply_catalog",
    "catalog_version",
    "check_catalog",
    "read_catalog",
    "write_catalog",
]


def catalog_version(connection: SqlConnection) -> int:
    row = connection.execute("SELECT version FROM catalog_state WHERE id = 1").fetchone()
    return int(row[0])


def apply_catalog(
    connection: SqlConnection, catalog: Catalog, tokens: Sequence[RegistrationToken]
) -> int:
    """Upsert ``catalog`` and issue ``tokens``, inside the caller's transaction, which must
    serialize catalog writers (SQLite's single writer; PostgreSQL: the ``catalog_state`` row
    lock taken here). A token for an agreement this catalog brings is issued only if the
    agreement is new, so two nodes applying one catalog at once mint one token per agreement;
    a token for an agreement the catalog does not carry (``subscribe`` reusing one) always is.
    Returns the new catalog version."""
    lock = " FOR UPDATE" if connection.dialect == "postgresql" else ""
    connection.execute(f"SELECT version FROM catalog_state WHERE id = 1{lock}")
    brought = {agreement.license_arn for agreement in catalog.agreements}
    existing = {
        row[0] for row in connection.execute("SELECT license_arn FROM agreements").fetchall()
    }
    version = write_catalog(connection, catalog)
    insert_tokens(
        connection,
        [t for t in tokens if t.license_arn not in brought or t.license_arn not in existing],
    )
    return version


def _exists(connection: SqlConnection, table: str, key: str, value: str) -> bool:
    row = connection.execute(f"SELECT 1 FROM {table} WHERE {key} = ?", (value,)).fetchone()
    return row is not None


def check_catalog(connection: SqlConnection, catalog: Catalog) -> None:
    """Refuse, with ``CatalogConflictError``, an upsert of ``catalog`` that the stored catalog
    does not allow. Run inside the writing transaction, which serializes catalog writers, so
    what it decides still holds at the commit: an access key id belongs to one account (a key
    of another seller or buyer is never taken over); a product's seller, an agreement's buyer
    and product exist (in ``catalog`` or stored); no two buyers share a CustomerIdentifier."""
    sellers = {seller.account_id for seller in catalog.sellers}
    buyers = {buyer.account_id for buyer in catalog.buyers}
    products = {product.product_code for product in catalog.products}
    owners = [("seller", s.account_id, s.access_keys) for s in catalog.sellers] + [
        ("buyer", b.account_id, b.access_keys) for b in catalog.buyers
    ]
    for kind, account, keys in owners:
        if kind == "seller" and _exists(connection, "buyers", "account_id", account):
            raise CatalogConflictError("account_id", f"account {account} is a buyer")
        if kind == "buyer" and _exists(connection, "sellers", "account_id", account):
            raise CatalogConflictError("account_id", f"account {account} is a seller")
        for key in keys:
            row = connection.execute(
                "SELECT owner_kind, account_id FROM access_keys WHERE access_key_id = ?",
                (key.access_key_id,),
            ).fetchone()
            if row is not None and (row[0], row[1]) != (kind, account):
                raise CatalogConflictError(
                    "access_key_id",
                    f"{key.access_key_id} already belongs to account {row[1]}",
                )
    for product in catalog.products:
        seller = product.seller_account_id
        if seller not in sellers and not _exists(connection, "sellers", "account_id", seller):
            raise CatalogConflictError(
                "seller", f"product {product.product_code}: no seller with account_id {seller}"
            )
    for buyer in catalog.buyers:
        if buyer.customer_identifier is None:
            continue
        row = connection.execute(
            "SELECT account_id FROM buyers WHERE customer_identifier = ? AND account_id <> ?",
            (buyer.customer_identifier, buyer.account_id),
        ).fetchone()
        if row is not None:
            raise CatalogConflictError(
                "customer_identifier",
                f"{buyer.customer_identifier} is the CustomerIdentifier of buyer {row[0]}",
            )
    for agreement in catalog.agreements:
        buyer_id, code = agreement.buyer_account_id, agreement.product_code
        if buyer_id not in buyers and not _exists(connection, "buyers", "account_id", buyer_id):
            raise CatalogConflictError(
                "buyer_account_id",
                f"agreement {agreement.license_arn}: no buyer with account_id {buyer_id}",
            )
        if code not in products and not _exists(connection, "products", "product_code", code):
            raise CatalogConflictError(
                "product_code",
                f"agreement {agreement.license_arn}: no product with product_code {code}",
            )


def write_catalog(connection: SqlConnection, catalog: Catalog) -> int:
    """Upsert every entry of ``catalog`` (inside the caller's transaction, after
    ``check_catalog``, which refuses what the stored catalog does not allow); bump the
    version."""
    check_catalog(connection, catalog)
    for seller in catalog.sellers:
        connection.execute(
            "INSERT INTO sellers (account_id, name) VALUES (?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET name = excluded.name",
            (seller.account_id, seller.name),
        )
        _write_keys(connection, "seller", seller.account_id, seller.access_keys)
    for product in catalog.products:
        connection.execute(
            "INSERT INTO products (product_code, seller_account_id, kind, integration, name, "
            "registration_url, per_request_metering, notification_targets, pricing_model) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (product_code) DO UPDATE SET seller_account_id = "
            "excluded.seller_account_id, kind = excluded.kind, integration = excluded.integration,"
            " name = excluded.name, registration_url = excluded.registration_url, "
            "per_request_metering = excluded.per_request_metering, "
            "notification_targets = excluded.notification_targets, "
            "pricing_model = excluded.pricing_model",
            (
                product.product_code,
                product.seller_account_id,
                product.kind.value,
                product.integration.value,
                product.name,
                product.registration_url,
                int(product.per_request_metering),
                orjson.dumps([target_entry(t) for t in product.notification_targets]).decode(),
                product.pricing_model.value,
            ),
        )
        connection.execute("DELETE FROM dimensions WHERE product_code = ?", (product.product_code,))
        connection.executemany(
            "INSERT INTO dimensions (product_code, name, position) VALUES (?, ?, ?)",
            [(product.product_code, name, i) for i, name in enumerate(product.dimensions)],
        )
        connection.execute(
            "DELETE FROM notification_urls WHERE product_code = ?", (product.product_code,)
        )
        connection.executemany(
            "INSERT INTO notification_urls (product_code, position, url) VALUES (?, ?, ?)",
            [(product.product_code, i, url) for i, url in enumerate(product.notification_urls)],
        )
    _write_offers(connection, catalog.offers)
    for buyer in catalog.buyers:
        connection.execute(
            "INSERT INTO buyers (account_id, customer_identifier, name) VALUES (?, ?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET customer_identifier = "
            "excluded.customer_identifier, name = excluded.name",
            (buyer.account_id, buyer.customer_identifier, buyer.name),
        )
        _write_keys(connection, "buyer", buyer.account_id, buyer.access_keys)
    for agreement in catalog.agreements:
        connection.execute(
            "INSERT INTO agreements (license_arn, buyer_account_id, product_code, state, "
            "starts_at, ends_at, free_trial, pending_since, offer_id, configuration) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (license_arn) DO UPDATE SET buyer_account_id = excluded.buyer_account_id,"
            " product_code = excluded.product_code, state = excluded.state, "
            "starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
            "free_trial = excluded.free_trial, pending_since = excluded.pending_since, "
            "offer_id = excluded.offer_id, configuration = excluded.configuration",
            (
                agreement.license_arn,
                agreement.buyer_account_id,
                agreement.product_code,
                agreement.state.value,
                agreement.starts_at,
                agreement.ends_at,
                int(agreement.free_trial),
                agreement.pending_since,
                agreement.offer_id,
                _configuration_json(agreement.configuration),
            ),
        )
        connection.execute(
            "DELETE FROM entitlements WHERE license_arn = ?", (agreement.license_arn,)
        )
        connection.executemany(
            "INSERT INTO entitlements (license_arn, dimension, position, value_type, value, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (agreement.license_arn, e.dimension, i, *_stored_value(e.value), e.expires_at)
                for i, e in enumerate(agreement.entitlements)
            ],
        )
    connection.execute("UPDATE catalog_state SET version = version + 1 WHERE id = 1")
    return catalog_version(connection)


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


def _write_offers(connection: SqlConnection, offers: Sequence[Offer]) -> None:
    """Upsert offers (after their products); an offer's buyers and terms are JSON columns."""
    connection.executemany(
        "INSERT INTO offers (offer_id, product_code, name, buyers, terms) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (offer_id) DO UPDATE SET product_code = excluded.product_code, "
        "name = excluded.name, buyers = excluded.buyers, terms = excluded.terms",
        [
            (
                offer.offer_id,
                offer.product_code,
                offer.name,
                json.dumps(list(offer.buyers)),
                json.dumps([[term.key, term.body] for term in offer.terms]),
            )
            for offer in offers
        ],
    )


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


def _configuration(text: str | None) -> AcceptedConfiguration:
    if not text:
        return AcceptedConfiguration()
    raw = json.loads(text)
    return AcceptedConfiguration(
        raw.get("selector"),
        tuple((str(key), int(value)) for key, value in raw.get("dimensions", ())),
        raw.get("autoRenew"),
    )


def _write_keys(
    connection: SqlConnection, kind: str, account_id: str, keys: tuple[AccessKey, ...]
) -> None:
    connection.executemany(
        "INSERT INTO access_keys (access_key_id, secret_access_key, owner_kind, account_id) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (access_key_id) DO UPDATE SET "
        "secret_access_key = excluded.secret_access_key, owner_kind = excluded.owner_kind, "
        "account_id = excluded.account_id",
        [(key.access_key_id, key.secret_access_key, kind, account_id) for key in keys],
    )


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
    entitlements: dict[str, list[Entitlement]] = {}
    for arn, dimension, value_type, value, expires_at in connection.execute(
        "SELECT license_arn, dimension, value_type, value, expires_at FROM entitlements "
        "ORDER BY license_arn, position"
    ):
        entitlements.setdefault(arn, []).append(
            Entitlement(dimension, _read_value(value_type, value), expires_at)
        )
    agreements = tuple(
        Agreement(
            arn,
            buyer,
            product,
            AgreementState(state),
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

"""The catalog's operator actions: sellers, products (with their dimensions), buyers and their
access keys, entry by entry; a whole catalog document applied at once; the catalog shown.

Entries are the catalog file's (snake_case, ``catalog.loader``'s ``SellerEntry``,
``ProductEntry``, ``BuyerEntry``, ``AccessKeyEntry``), checked by the loader against the stored
catalog, so an entry accepted here is one ``marketmeter catalog apply`` would accept. A
replacement replaces the entry; a seller's or buyer's ``access_keys``, when given, replace its
keys, and when left out keep them. Secrets are answered once, by the ``add_key`` that created
the key, never by a read. A deletion something refers to is a 409 naming it; every change is
one ``Store.edit_catalog`` transaction, which bumps the catalog version so every node reloads.
Sellers and buyers share one set of actions (``AccountKind`` says what differs).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from marketmeter.catalog.checks import CatalogChecker, KnownKeys
from marketmeter.catalog.loader import (
    CatalogError,
    ProductEntry,
    as_catalog,
    load_catalog,
    load_catalog_data,
    stream_catalog,
    target_entry,
)
from marketmeter.catalog.model import (
    AccessKey,
    Buyer,
    Catalog,
    CatalogSnapshot,
    Offer,
    Product,
    Seller,
)
from marketmeter.metering.clock import Clock
from marketmeter.metering.registration_tokens import (
    TokenGenerator,
    tokens_for_agreements,
    tokens_for_new_agreements,
)
from marketmeter.metering.types import RegistrationToken
from marketmeter.refusal import Refusal
from marketmeter.store.base import (
    CatalogConflictError,
    CatalogEdit,
    CatalogReferenceError,
    Store,
)

__all__ = [
    "BUYERS",
    "SELLERS",
    "STREAM_CHUNK",
    "AccessKeyFactory",
    "AccountKind",
    "CatalogOperations",
    "StreamedApply",
    "buyer_json",
    "document_digest",
    "product_json",
    "random_access_key",
    "seller_json",
]

AccessKeyFactory = Callable[[], tuple[str, str]]
"""Makes a new access key pair: (access key id, secret access key)."""

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def random_access_key() -> tuple[str, str]:
    """An AWS-looking pair: ``AKIA`` and 16 of A-Z 0-9; a secret of 40 base64 characters."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


def document_digest(paths: Sequence[Path]) -> str:
    """The SHA-256 of catalog files (names and bytes, in order): what ``serve --catalog``
    compares with the digest of the last apply to recognise a catalog unchanged."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}\0".encode())
        with path.open("rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()


def _keys_json(keys: Sequence[AccessKey]) -> list[dict[str, Any]]:
    return [{"access_key_id": key.access_key_id} for key in keys]


def seller_json(seller: Seller) -> dict[str, Any]:
    return {
        "account_id": seller.account_id,
        "name": seller.name,
        "access_keys": _keys_json(seller.access_keys),
    }


def buyer_json(buyer: Buyer) -> dict[str, Any]:
    return {
        "account_id": buyer.account_id,
        "customer_identifier": buyer.customer_identifier,
        "name": buyer.name,
        "access_keys": _keys_json(buyer.access_keys),
    }


# the entry's field names that the domain model spells otherwise
_PRODUCT_ATTRIBUTES = {"seller": "seller_account_id"}


def product_json(product: Product) -> dict[str, Any]:
    """The product as its catalog entry: every field ``ProductEntry`` has."""
    values = {
        name: getattr(product, _PRODUCT_ATTRIBUTES.get(name, name))
        for name in ProductEntry.model_fields
    }
    targets = [target_entry(t) for t in product.notification_targets]
    values["notification_targets"] = targets
    entry = ProductEntry.model_validate(
        {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    ).model_dump(mode="json")
    return {**entry, "notification_targets": targets}  # each target's own fields only


def offer_json(offer: Offer) -> dict[str, Any]:
    """The offer as its catalog entry (``OfferEntry``: terms in the Agreement API's shape)."""
    return {
        "offer_id": offer.offer_id,
        "product": offer.product_code,
        "name": offer.name,
        "buyers": list(offer.buyers),
        "terms": [{term.key: json.loads(term.body)} for term in offer.terms],
    }


_AccountT = TypeVar("_AccountT", Seller, Buyer)

STREAM_CHUNK = 20_000
"""Entries of a streamed catalog checked and written together (one ``executemany``, or one
``COPY``, per table): what a streamed apply holds at once (on PostgreSQL twice, the next
chunk being read while one is written: ``store.prefetch``), beside the keys."""


class StreamedApply:
    """A catalog document applied as it is read: ``chunks`` yields ``STREAM_CHUNK`` checked
    entries at a time (``catalog.loader.stream_catalog``, against ``known``, the ledger's
    keys) with the registration tokens of their new SaaS agreements, issued at
    ``issued_at``; after the last chunk it raises ``CatalogError`` if the document has any
    problem, so the transaction writing the chunks applies none of them. ``counts`` holds the
    entries of each section, ``minted`` the tokens minted, so far."""

    def __init__(self, known: KnownKeys, issued_at: float, tokens: TokenGenerator) -> None:
        self._known = known
        self._existing = known.license_arns  # the ledger's, not grown by the checker
        self._checker = CatalogChecker(known)
        self._issued_at = issued_at
        self._tokens = tokens
        self.counts = {"sellers": 0, "products": 0, "buyers": 0, "agreements": 0}
        self.minted = 0

    def chunks(
        self, stream: IO[bytes] | IO[str], source: str
    ) -> Iterator[tuple[Catalog, list[RegistrationToken]]]:
        checker = self._checker
        entries = stream_catalog(stream, self._known, source, checker)
        while part := list(itertools.islice(entries, STREAM_CHUNK)):
            catalog = as_catalog(part)
            del part
            for section in self.counts:
                self.counts[section] += len(getattr(catalog, section))
            tokens = tokens_for_agreements(
                catalog.agreements,
                self._existing,
                checker.product_kinds,
                self._issued_at,
                self._tokens,
            )
            self.minted += len(tokens)
            yield catalog, tokens


@dataclass(frozen=True)
class AccountKind(Generic[_AccountT]):
    """What sellers and buyers differ in."""

    name: str  # "seller": in paths (plural), operation ids and messages
    blockers: str  # what an account cannot be deleted while it has
    find: Callable[[CatalogSnapshot, str], _AccountT | None]
    entries: Callable[[Catalog], tuple[_AccountT, ...]]
    as_catalog: Callable[[_AccountT], Catalog]
    deletion: Callable[[str], CatalogEdit]
    view: Callable[[_AccountT], dict[str, Any]]

    @property
    def collection(self) -> str:
        return f"{self.name}s"


def _find_seller(snapshot: CatalogSnapshot, account: str) -> Seller | None:
    return next((s for s in snapshot.catalog.sellers if s.account_id == account), None)


SELLERS = AccountKind[Seller](
    name="seller",
    blockers="products",
    find=_find_seller,
    entries=lambda catalog: catalog.sellers,
    as_catalog=lambda seller: Catalog(sellers=(seller,)),
    deletion=lambda account: CatalogEdit(delete_sellers=(account,)),
    view=seller_json,
)
BUYERS = AccountKind[Buyer](
    name="buyer",
    blockers="agreements",
    find=lambda snapshot, account: snapshot.buyers.get(account),
    entries=lambda catalog: catalog.buyers,
    as_catalog=lambda buyer: Catalog(buyers=(buyer,)),
    deletion=lambda account: CatalogEdit(delete_buyers=(account,)),
    view=buyer_json,
)
_OTHER: dict[str, AccountKind[Any]] = {"seller": BUYERS, "buyer": SELLERS}


def _checked(section: str, entry: dict[str, Any], existing: Catalog) -> Catalog:
    """The entry through the catalog loader (fields, wire constraints, references)."""
    try:
        return load_catalog_data({section: [entry]}, existing, source=section)
    except CatalogError as error:
        raise _problem(section, entry, error.problems) from None


def _problem(section: str, entry: dict[str, Any], problems: list[str]) -> Refusal:
    """A 400 naming the field of the loader's first problem (``products[0] (code): field:
    message``); every problem is in the message."""
    label = ""
    for key in ("product_code", "account_id", "offer_id"):
        if isinstance(entry.get(key), str | int):
            label = f" ({entry[key]})"
            break
    found: list[tuple[str, str]] = []
    for problem in problems:
        rest = problem.removeprefix(f"{section}[0]{label}").removeprefix(": ")
        field, separator, message = rest.partition(": ")
        if not separator or " " in field:
            field, message = "body", rest
        found.append((field, message))
    if len(found) == 1:
        return Refusal(found[0][0], found[0][1])
    return Refusal(found[0][0], "; ".join(f"{f}: {m}" for f, m in found))


def _store_refusal(error: CatalogConflictError) -> Refusal:
    """What the store refused inside the writing transaction (the catalog changed since the
    snapshot the entry was checked against): 404 for an entry gone, else 409."""
    if error.missing:
        return Refusal.not_found(error.field, str(error))
    return Refusal.conflict(error.field, str(error))


def _keyed(body: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A replacement is the whole entry; its key must be the one the path names."""
    if body.get(key) != value:
        raise Refusal(key, f"must be {value!r}, the entry this path names")
    return body


def _kept_keys(
    body: dict[str, Any], old: Sequence[AccessKey], new: Sequence[AccessKey]
) -> tuple[tuple[AccessKey, ...], tuple[str, ...]]:
    """The keys after a replacement, and those it removes (only if it lists
    ``access_keys``)."""
    if "access_keys" not in body:
        return tuple(old), ()
    listed = {key.access_key_id for key in new}
    return tuple(new), tuple(k.access_key_id for k in old if k.access_key_id not in listed)


class CatalogOperations:
    """The catalog's actions over ``store``; ``access_keys`` makes the pairs of ``add_key``
    without a given key; ``tokens`` mints registration tokens for the new SaaS agreements of
    an applied document, issued at ``clock``'s now."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        tokens: TokenGenerator,
        access_keys: AccessKeyFactory = random_access_key,
    ) -> None:
        self.store = store
        self._clock = clock
        self._tokens = tokens
        self._access_keys = access_keys

    async def snapshot(self) -> CatalogSnapshot:
        return await self.store.catalog_snapshot()

    async def _edit(self, edit: CatalogEdit, field: str | None = None) -> None:
        """One transaction; a deletion something refers to is a 409 on ``field``."""
        try:
            await self.store.edit_catalog(edit)
        except CatalogReferenceError as error:
            raise Refusal.conflict(field, str(error)) from None
        except CatalogConflictError as error:
            raise _store_refusal(error) from None

    # --- a whole catalog ------------------------------------------------------------------

    async def show(self) -> dict[str, Any]:
        """The stored catalog and its version (secret access keys included: the operator's
        own file, as ``catalog apply`` took it)."""
        snapshot = await self.snapshot()
        shown = {"version": snapshot.version, **asdict(snapshot.catalog)}
        # offers and the buyers' choices only where the catalog has them (docs/catalog.md)
        offers = shown.pop("offers")
        for shown_agreement, agreement in zip(
            shown["agreements"], snapshot.catalog.agreements, strict=True
        ):
            if agreement.configuration.empty:
                del shown_agreement["configuration"]
        if offers:
            shown["offers"] = [offer_json(offer) for offer in snapshot.catalog.offers]
        return shown

    async def apply(self, text: str, source: str) -> dict[str, Any]:
        """Validate the catalog document ``text`` (YAML or JSON) and upsert it, all or
        nothing; every new SaaS agreement gets a registration token. A document with problems
        is refused with the loader's whole problem list."""
        current = await self.snapshot()
        try:
            parsed = load_catalog(text, current.catalog, source=source)
        except CatalogError as error:
            raise Refusal("catalog", str(error)) from None
        minted = tokens_for_new_agreements(
            current, parsed, self._clock.now().timestamp(), self._tokens
        )
        try:
            version = await self.store.apply_catalog(parsed, minted)
        except CatalogConflictError as error:
            raise _store_refusal(error) from None
        return {
            "source": source,
            "sellers": len(parsed.sellers),
            "products": len(parsed.products),
            "buyers": len(parsed.buyers),
            "agreements": len(parsed.agreements),
            "catalogVersion": version,
            "tokensMinted": len(minted),
        }

    async def apply_stream(
        self,
        stream: IO[bytes] | IO[str],
        source: str,
        digest: str | None = None,
    ) -> dict[str, Any]:
        """``apply`` for a document of any size, read, checked and written entry by entry in
        one transaction (``streamed_chunks``), never held whole: all or nothing, with the same
        problem list and answer. ``digest`` names the document (``serve --catalog``
        recognises it unchanged)."""
        known = await self.store.catalog_keys()
        applied = StreamedApply(known, self._clock.now().timestamp(), self._tokens)
        try:
            version = await self.store.apply_catalog_chunks(applied.chunks(stream, source), digest)
        except CatalogError as error:
            raise Refusal("catalog", str(error)) from None
        except CatalogConflictError as error:
            raise _store_refusal(error) from None
        return {
            "source": source,
            **applied.counts,
            "catalogVersion": version,
            "tokensMinted": applied.minted,
        }

    # --- sellers and buyers ---------------------------------------------------------------

    def _account_of(
        self, kind: AccountKind[_AccountT], snapshot: CatalogSnapshot, account: str
    ) -> _AccountT:
        found = kind.find(snapshot, account)
        if found is None:
            raise Refusal.not_found("accountId", f"no {kind.name} with account_id {account}")
        return found

    async def accounts(self, kind: AccountKind[Any]) -> dict[str, Any]:
        entries = kind.entries((await self.snapshot()).catalog)
        return {kind.collection: [kind.view(a) for a in entries]}

    async def account(self, kind: AccountKind[Any], account: str) -> dict[str, Any]:
        return dict(kind.view(self._account_of(kind, await self.snapshot(), account)))

    async def add_account(self, kind: AccountKind[Any], entry: dict[str, Any]) -> dict[str, Any]:
        snapshot = await self.snapshot()
        other = _OTHER[kind.name]
        account = entry.get("account_id")
        if isinstance(account, str):
            if kind.find(snapshot, account) is not None:
                raise Refusal.conflict("account_id", f"{kind.name} {account} already exists")
            if other.find(snapshot, account) is not None:
                raise Refusal.conflict("account_id", f"account {account} is a {other.name}")
        checked = _checked(kind.collection, entry, snapshot.catalog)
        created = kind.entries(checked)[0]
        await self._edit(
            CatalogEdit(upserts=checked, expect_new=((kind.collection, created.account_id),))
        )
        return dict(kind.view(created))

    async def replace_account(
        self, kind: AccountKind[Any], account: str, entry: dict[str, Any]
    ) -> dict[str, Any]:
        snapshot = await self.snapshot()
        old = self._account_of(kind, snapshot, account)
        keyed = _keyed(entry, "account_id", account)
        new = kind.entries(_checked(kind.collection, keyed, snapshot.catalog))[0]
        keys, removed = _kept_keys(entry, old.access_keys, new.access_keys)
        updated = replace(new, access_keys=keys)
        await self._edit(
            CatalogEdit(
                upserts=kind.as_catalog(updated),
                delete_access_keys=removed,
                expect_existing=((kind.collection, account),),
            )
        )
        return dict(kind.view(updated))

    async def remove_account(self, kind: AccountKind[Any], account: str) -> None:
        found = self._account_of(kind, await self.snapshot(), account)
        await self._edit(kind.deletion(found.account_id), "accountId")

    async def add_key(
        self, kind: AccountKind[Any], account: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Add a key pair to ``account`` (generated when ``body`` is empty); the answer is
        the only one that shows its secret."""
        snapshot = await self.snapshot()
        owner = self._account_of(kind, snapshot, account)
        key = self._new_key(body, snapshot, owner.access_keys)
        _checked(kind.collection, {**kind.view(owner), "access_keys": [key]}, snapshot.catalog)
        pair = AccessKey(key["access_key_id"], key["secret_access_key"])
        updated = replace(owner, access_keys=(*owner.access_keys, pair))
        await self._edit(
            CatalogEdit(
                upserts=kind.as_catalog(updated), expect_existing=((kind.collection, account),)
            )
        )
        return key

    def _new_key(
        self, body: dict[str, Any], snapshot: CatalogSnapshot, owned: Sequence[AccessKey]
    ) -> dict[str, Any]:
        if not body:
            generated, secret = self._access_keys()
            return {"access_key_id": generated, "secret_access_key": secret}
        key_id = body.get("access_key_id")
        if any(key.access_key_id == key_id for key in owned):
            raise Refusal.conflict("access_key_id", f"the account already has the key {key_id}")
        owner = snapshot.key_owners.get(key_id) if isinstance(key_id, str) else None
        if owner is not None:
            raise Refusal.conflict(
                "access_key_id", f"{key_id} already belongs to account {owner.account_id}"
            )
        return dict(body)

    async def remove_key(self, kind: AccountKind[Any], account: str, key_id: str) -> None:
        owner = self._account_of(kind, await self.snapshot(), account)
        if all(key.access_key_id != key_id for key in owner.access_keys):
            raise Refusal.not_found("accessKeyId", f"the account has no access key {key_id}")
        await self._edit(CatalogEdit(delete_access_keys=(key_id,)))

    # --- products -------------------------------------------------------------------------

    def _product_of(self, snapshot: CatalogSnapshot, code: str) -> Product:
        product = snapshot.products.get(code)
        if product is None:
            raise Refusal.not_found("productCode", f"no product with product_code {code}")
        return product

    async def products(self) -> dict[str, Any]:
        snapshot = await self.snapshot()
        return {"products": [product_json(p) for p in snapshot.catalog.products]}

    async def product(self, code: str) -> dict[str, Any]:
        return product_json(self._product_of(await self.snapshot(), code))

    async def add_product(self, entry: dict[str, Any]) -> dict[str, Any]:
        snapshot = await self.snapshot()
        code = entry.get("product_code")
        if isinstance(code, str) and code in snapshot.products:
            raise Refusal.conflict("product_code", f"product {code} already exists")
        checked = _checked("products", entry, snapshot.catalog)
        created = checked.products[0].product_code
        await self._edit(CatalogEdit(upserts=checked, expect_new=(("products", created),)))
        return product_json(checked.products[0])

    async def replace_product(self, code: str, entry: dict[str, Any]) -> dict[str, Any]:
        snapshot = await self.snapshot()
        self._product_of(snapshot, code)
        checked = _checked("products", _keyed(entry, "product_code", code), snapshot.catalog)
        await self._edit(CatalogEdit(upserts=checked, expect_existing=(("products", code),)))
        return product_json(checked.products[0])

    async def update_product(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some fields of ``code``; the others keep their values."""
        current = await self.product(code)
        return await self.replace_product(code, {**current, **changes})

    async def remove_product(self, code: str) -> None:
        product = self._product_of(await self.snapshot(), code)
        await self._edit(CatalogEdit(delete_products=(product.product_code,)), "productCode")

    # --- offers ---------------------------------------------------------------------------

    def _offer_of(self, snapshot: CatalogSnapshot, offer_id: str) -> Offer:
        offer = snapshot.offers.get(offer_id)
        if offer is None:
            raise Refusal.not_found("offerId", f"no offer with offer_id {offer_id}")
        return offer

    async def offers(self) -> dict[str, Any]:
        snapshot = await self.snapshot()
        return {"offers": [offer_json(o) for o in snapshot.catalog.offers]}

    async def offer(self, offer_id: str) -> dict[str, Any]:
        return offer_json(self._offer_of(await self.snapshot(), offer_id))

    async def add_offer(self, entry: dict[str, Any]) -> dict[str, Any]:
        snapshot = await self.snapshot()
        offer_id = entry.get("offer_id")
        if isinstance(offer_id, str) and offer_id in snapshot.offers:
            raise Refusal.conflict("offer_id", f"offer {offer_id} already exists")
        checked = _checked("offers", entry, snapshot.catalog)
        created = checked.offers[0].offer_id
        await self._edit(CatalogEdit(upserts=checked, expect_new=(("offers", created),)))
        return offer_json(checked.offers[0])

    async def replace_offer(self, offer_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        snapshot = await self.snapshot()
        self._offer_of(snapshot, offer_id)
        checked = _checked("offers", _keyed(entry, "offer_id", offer_id), snapshot.catalog)
        await self._edit(CatalogEdit(upserts=checked, expect_existing=(("offers", offer_id),)))
        return offer_json(checked.offers[0])

    async def remove_offer(self, offer_id: str) -> None:
        offer = self._offer_of(await self.snapshot(), offer_id)
        await self._edit(CatalogEdit(delete_offers=(offer.offer_id,)), "offerId")

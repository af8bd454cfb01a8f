"""The catalog as domain values, and the read-only snapshot the rules look things up in.

Plain frozen dataclasses; imports nothing of ours. The YAML loader builds a ``Catalog``; the
store persists it and hands the rules a ``CatalogSnapshot`` (dict lookups, no I/O).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

__all__ = [
    "LICENSE_ARN_FORMAT",
    "LICENSE_ISSUER_ACCOUNT",
    "AccessKey",
    "Agreement",
    "AgreementState",
    "Buyer",
    "Catalog",
    "CatalogSnapshot",
    "Integration",
    "KeyOwner",
    "Product",
    "ProductKind",
    "Seller",
    "agreement_id_for",
    "customer_identifier_for",
    "legacy_license_arn_for",
    "license_arn_for",
    "license_arn_forms",
    "product_id_for",
]

# AWS Marketplace's license-issuing account: real LicenseArns (ResolveCustomer answers, the
# License Manager licenses Marketplace grants) name it, not the buyer. The buyer of a license is
# known from its agreement only; nothing ever reads an account out of a LicenseArn.
LICENSE_ISSUER_ACCOUNT = "294406891311"

# What a LicenseArn looks like (any 12-digit account: catalogs written for earlier marketmeter
# versions name the buyer's); any other ARN the model's pattern lets through is not a license.
LICENSE_ARN_FORMAT = re.compile(
    r"arn:aws[a-zA-Z-]*:license-manager::[0-9]{12}:license:l-[0-9a-f]{32}"
)


def license_arn_for(buyer_account_id: str, *seed: str) -> str:
    """A stable LicenseArn for a buyer's agreement, derived from ``seed`` (same seed, same
    ARN), in AWS's form: ``arn:aws:license-manager::294406891311:license:l-<32 hex>``."""
    license_id = _license_id(buyer_account_id, *seed)
    return f"arn:aws:license-manager::{LICENSE_ISSUER_ACCOUNT}:license:l-{license_id}"


def legacy_license_arn_for(buyer_account_id: str, *seed: str) -> str:
    """The ARN ``license_arn_for`` derived before marketmeter followed AWS's form (the buyer's
    account in place of the issuer's, the same ``l-`` id): a catalog applied again to a ledger
    that holds it keeps that agreement instead of adding a second one."""
    license_id = _license_id(buyer_account_id, *seed)
    return f"arn:aws:license-manager::{buyer_account_id}:license:l-{license_id}"


def license_arn_forms(buyer_account_id: str, *seed: str) -> tuple[str, str]:
    """``license_arn_for`` and ``legacy_license_arn_for`` at once (one digest)."""
    license_id = _license_id(buyer_account_id, *seed)
    return (
        f"arn:aws:license-manager::{LICENSE_ISSUER_ACCOUNT}:license:l-{license_id}",
        f"arn:aws:license-manager::{buyer_account_id}:license:l-{license_id}",
    )


def _license_id(buyer_account_id: str, *seed: str) -> str:
    return hashlib.sha256("|".join((buyer_account_id, *seed)).encode()).hexdigest()[:32]


def agreement_id_for(license_arn: str) -> str:
    """The agreement id AWS would show for a license: ``agmt-`` and 25 lowercase alphanumerics,
    derived from the LicenseArn (same license, same id)."""
    digest = int.from_bytes(hashlib.sha256(f"agreement|{license_arn}".encode()).digest())
    return "agmt-" + _base36(digest, 25)


def product_id_for(product_code: str) -> str:
    """The product's entity id as AWS shows it beside the product code (``prod-`` and 13
    lowercase alphanumerics, e.g. in License events), derived from the code (same code, same
    id): marketmeter's catalog has product codes only."""
    digest = int.from_bytes(hashlib.sha256(f"product|{product_code}".encode()).digest())
    return "prod-" + _base36(digest, 13)


def customer_identifier_for(buyer_account_id: str) -> str:
    """A legacy CustomerIdentifier for a buyer created on the fly (e.g. by ``subscribe``):
    13 alphanumerics derived from the account id, as opaque as AWS's."""
    digest = int.from_bytes(hashlib.sha256(f"customer|{buyer_account_id}".encode()).digest())
    return _base36(digest, 13)


def _base36(number: int, length: int) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(length):
        number, digit = divmod(number, 36)
        out.append(alphabet[digit])
    return "".join(out)


class ProductKind(StrEnum):
    SAAS = "saas"
    AMI = "ami"
    CONTAINER = "container"


class Integration(StrEnum):
    LEGACY = "legacy"  # CustomerIdentifier + ProductCode
    CONCURRENT_AGREEMENTS = "concurrent-agreements"  # CustomerAWSAccountId + LicenseArn


class AgreementState(StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBE_PENDING = "unsubscribe-pending"
    UNSUBSCRIBED = "unsubscribed"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True, slots=True)
class Seller:
    account_id: str
    name: str = ""
    access_keys: tuple[AccessKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Product:
    product_code: str
    seller_account_id: str
    kind: ProductKind
    dimensions: tuple[str, ...]
    integration: Integration = Integration.LEGACY
    name: str = ""
    registration_url: str | None = None
    per_request_metering: bool = False
    notification_urls: tuple[str, ...] = ()  # where lifecycle notifications are POSTed


@dataclass(frozen=True, slots=True)
class Buyer:
    account_id: str
    customer_identifier: str | None = None
    name: str = ""
    access_keys: tuple[AccessKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Agreement:
    """A buyer's subscription to a product. Times are epoch seconds; ``None`` is unbounded.

    An ``unsubscribe-pending`` agreement ends at ``ends_at`` (when it went pending,
    ``pending_since``, plus the unsubscribe delay): from then on it is unsubscribed, whether or
    not the stored state has caught up yet (``effective_state``)."""

    license_arn: str
    buyer_account_id: str
    product_code: str
    state: AgreementState = AgreementState.SUBSCRIBED
    starts_at: float | None = None
    ends_at: float | None = None
    free_trial: bool = False
    pending_since: float | None = None  # when it became unsubscribe-pending
    offer_id: str | None = None  # the offer accepted, when known

    @property
    def agreement_id(self) -> str:
        return agreement_id_for(self.license_arn)

    def covers(self, timestamp: float) -> bool:
        """True if ``timestamp`` lies within the agreement's period [start, end)."""
        if self.starts_at is not None and timestamp < self.starts_at:
            return False
        return not (self.ends_at is not None and timestamp >= self.ends_at)

    @property
    def bills(self) -> bool:
        """True if the stored state lets usage be metered (docs/catalog.md,
        docs/subscription-lifecycle.md)."""
        return self.state in (AgreementState.SUBSCRIBED, AgreementState.UNSUBSCRIBE_PENDING)

    def effective_state(self, now: float) -> AgreementState:
        """The state at ``now``: an ``unsubscribe-pending`` agreement whose end has come is
        ``unsubscribed`` even before the transition is stored."""
        if (
            self.state is AgreementState.UNSUBSCRIBE_PENDING
            and self.ends_at is not None
            and now >= self.ends_at
        ):
            return AgreementState.UNSUBSCRIBED
        return self.state

    def bills_at(self, now: float) -> bool:
        """True if the state at ``now`` lets usage be metered (docs/subscription-lifecycle.md:
        records within the pending window are billed, none after unsubscribe-success)."""
        return self.effective_state(now) in (
            AgreementState.SUBSCRIBED,
            AgreementState.UNSUBSCRIBE_PENDING,
        )


@dataclass(frozen=True, slots=True)
class Catalog:
    sellers: tuple[Seller, ...] = ()
    products: tuple[Product, ...] = ()
    buyers: tuple[Buyer, ...] = ()
    agreements: tuple[Agreement, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Whose access key it is: a seller's or a buyer's, and which account."""

    kind: str  # "seller" | "buyer"
    account_id: str


@dataclass(frozen=True)
class CatalogSnapshot:
    """An immutable view of the catalog with the lookups the rules need."""

    version: int
    catalog: Catalog
    products: dict[str, Product] = field(init=False)
    buyers: dict[str, Buyer] = field(init=False)
    buyers_by_customer_identifier: dict[str, Buyer] = field(init=False)
    agreements_by_license: dict[str, Agreement] = field(init=False)
    agreements_by_buyer_product: dict[tuple[str, str], tuple[Agreement, ...]] = field(init=False)
    key_owners: dict[str, KeyOwner] = field(init=False)

    def __post_init__(self) -> None:
        catalog = self.catalog
        set_ = object.__setattr__
        set_(self, "products", {p.product_code: p for p in catalog.products})
        set_(self, "buyers", {b.account_id: b for b in catalog.buyers})
        set_(
            self,
            "buyers_by_customer_identifier",
            {b.customer_identifier: b for b in catalog.buyers if b.customer_identifier},
        )
        set_(self, "agreements_by_license", {a.license_arn: a for a in catalog.agreements})
        grouped: dict[tuple[str, str], list[Agreement]] = {}
        for agreement in catalog.agreements:
            key = (agreement.buyer_account_id, agreement.product_code)
            grouped.setdefault(key, []).append(agreement)
        set_(
            self,
            "agreements_by_buyer_product",
            {key: tuple(values) for key, values in grouped.items()},
        )
        owners = {
            key.access_key_id: KeyOwner("seller", seller.account_id)
            for seller in catalog.sellers
            for key in seller.access_keys
        }
        owners.update(
            (key.access_key_id, KeyOwner("buyer", buyer.account_id))
            for buyer in catalog.buyers
            for key in buyer.access_keys
        )
        set_(self, "key_owners", owners)

    @cached_property
    def agreements_by_id(self) -> dict[str, Agreement]:
        """Agreements by their id, made on first use (a digest each: a server that never
        looks an agreement up by id never pays for it)."""
        return {a.agreement_id: a for a in self.catalog.agreements}

    @classmethod
    def empty(cls) -> CatalogSnapshot:
        return cls(0, Catalog())

    def agreements_of(self, buyer_account_id: str, product_code: str) -> Iterable[Agreement]:
        return self.agreements_by_buyer_product.get((buyer_account_id, product_code), ())

    def agreement(self, reference: str) -> Agreement | None:
        """The agreement with this agreement id (``agmt-...``) or LicenseArn, if any."""
        return self.agreements_by_id.get(reference) or self.agreements_by_license.get(reference)

    def entitlement(
        self,
        buyer_account_id: str,
        product_code: str,
        timestamp: float,
        now: float | None = None,
    ) -> Agreement | None:
        """The agreement that lets the buyer use the product at ``timestamp``, judged by its
        state at ``now`` (default: ``timestamp``), if any (the latest started one when
        several do)."""
        at = timestamp if now is None else now
        active = [
            agreement
            for agreement in self.agreements_of(buyer_account_id, product_code)
            if agreement.bills_at(at) and agreement.covers(timestamp)
        ]
        if not active:
            return None
        return max(active, key=lambda a: (a.starts_at or float("-inf"), a.license_arn))

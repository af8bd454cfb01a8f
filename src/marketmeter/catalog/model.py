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
    "AcceptedConfiguration",
    "AccessKey",
    "Agreement",
    "AgreementState",
    "Buyer",
    "Catalog",
    "CatalogSnapshot",
    "Entitlement",
    "EntitlementValue",
    "Integration",
    "KeyOwner",
    "NotificationKind",
    "NotificationTarget",
    "Offer",
    "OfferTerm",
    "PricingModel",
    "Product",
    "ProductKind",
    "Seller",
    "TargetKind",
    "agreement_id_for",
    "customer_identifier_for",
    "default_offer_id_for",
    "entitlement_problems",
    "legacy_license_arn_for",
    "license_arn_for",
    "license_arn_forms",
    "product_id_for",
    "term_id_for",
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


def default_offer_id_for(product_code: str) -> str:
    """The id of the public offer a product without offers in the catalog is sold through
    (``offer-`` and 13 lowercase alphanumerics, AWS's form), derived from the code; its terms
    are derived too (docs/agreement-api.md, "Offers and terms")."""
    digest = int.from_bytes(hashlib.sha256(f"offer|{product_code}".encode()).digest())
    return "offer-" + _base36(digest, 13)


def term_id_for(offer_id: str, position: int, term_type: str) -> str:
    """A term's id as AWS shows it (``term-`` and 64 hex digits), stable per offer, position
    and type: the same term has the same id in every agreement made on the offer."""
    return "term-" + hashlib.sha256(f"term|{offer_id}|{position}|{term_type}".encode()).hexdigest()


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


class PricingModel(StrEnum):
    """How a product is sold (docs/entitlement-service.md): by usage alone (no entitlements),
    by contract (entitlements only) or by contract with consumption (entitlements, and usage
    beyond them metered)."""

    USAGE = "usage"
    CONTRACT = "contract"
    CONTRACT_WITH_CONSUMPTION = "contract-with-consumption"

    @property
    def has_entitlements(self) -> bool:
        return self is not PricingModel.USAGE


# An entitlement's value: exactly one of GetEntitlements' IntegerValue, DoubleValue,
# BooleanValue or StringValue, told apart by the Python type.
EntitlementValue = bool | int | float | str


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What an agreement entitles its buyer to for one dimension: ``value`` (a quantity, a
    tier's flag, any value), until ``expires_at`` (epoch seconds; ``None``: the agreement's
    end)."""

    dimension: str
    value: EntitlementValue
    expires_at: float | None = None


# IntegerValue is a 32-bit integer (botocore's ``Integer``; Java's int on AWS's side).
INTEGER_VALUE_RANGE = (-(2**31), 2**31 - 1)


def entitlement_problems(
    entitlements: Iterable[Entitlement], product: Product | None
) -> list[tuple[int | None, str]]:
    """What is wrong with an agreement's entitlements for ``product`` (``None``: unknown, its
    dimensions not checked), as (position or ``None`` for the whole list, problem): a product
    priced by usage has none; each names a dimension of the product, once; an integer fits
    IntegerValue; a fraction is finite."""
    found: list[tuple[int | None, str]] = []
    listed = list(entitlements)
    if listed and product is not None and not product.pricing_model.has_entitlements:
        found.append(
            (
                None,
                f"product {product.product_code} is priced by usage (pricing_model: usage) "
                "and has no entitlements",
            )
        )
    seen: set[str] = set()
    low, high = INTEGER_VALUE_RANGE
    for index, item in enumerate(listed):
        if product is not None and item.dimension not in product.dimensions:
            found.append(
                (index, f"dimension {item.dimension} is not a dimension of {product.product_code}")
            )
        if item.dimension in seen:
            found.append((index, f"dimension {item.dimension} is listed twice"))
        seen.add(item.dimension)
        value = item.value
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            found.append((index, f"value: a whole number must lie in [{low}, {high}]"))
        if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
            found.append((index, "value: must be a finite number"))
    return found


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


class TargetKind(StrEnum):
    """Where a delivery target sends notifications (docs/subscription-lifecycle.md)."""

    SNS = "sns"  # Publish to a topic (AWS's topic name, created if missing)
    SQS = "sqs"  # SendMessage to a queue: the SNS envelope, or the bare message (raw)
    EVENTBRIDGE = "eventbridge"  # PutEvents to a bus
    HTTP = "http"  # POST to a URL (optionally as an SNS HTTP(S) subscription)


class NotificationKind(StrEnum):
    """Which of AWS's notifications: the SNS subscription and entitlement topics' messages,
    or the EventBridge agreement and license events."""

    SUBSCRIPTION = "subscription"
    ENTITLEMENT = "entitlement"
    AGREEMENT = "agreement"


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """A product's delivery target. ``name`` is unique per product; ``notifications`` the
    kinds it receives; ``endpoint_url``, ``region`` and the key pair name the SNS, SQS or
    EventBridge endpoint (no key pair: the standard AWS variables). ``topic_arn`` (sns: instead
    of AWS's topic name), ``queue_url`` and ``raw_delivery`` (sqs), ``event_bus`` (eventbridge),
    ``url`` and ``sns_protocol`` (http) are the kind's own. A ``paused`` target keeps its
    deliveries pending."""

    name: str
    kind: TargetKind
    notifications: tuple[NotificationKind, ...]
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    topic_arn: str | None = None
    queue_url: str | None = None
    raw_delivery: bool = False
    event_bus: str = "default"
    url: str | None = None
    sns_protocol: bool = False
    paused: bool = False


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
    notification_targets: tuple[NotificationTarget, ...] = ()  # SNS, SQS, EventBridge, HTTP
    pricing_model: PricingModel = PricingModel.USAGE

    def target(self, name: str) -> NotificationTarget | None:
        """The target named ``name``, or a webhook URL of ``notification_urls`` as a plain
        ``http`` target named by itself."""
        for target in self.notification_targets:
            if target.name == name:
                return target
        if name in self.notification_urls:
            return NotificationTarget(name, TargetKind.HTTP, tuple(NotificationKind), url=name)
        return None


@dataclass(frozen=True, slots=True)
class Buyer:
    account_id: str
    customer_identifier: str | None = None
    name: str = ""
    access_keys: tuple[AccessKey, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferTerm:
    """One term of an offer, in the Agreement API's own shape: ``key`` is the member of
    ``AcceptedTerm`` naming its type (``usageBasedPricingTerm``, ``legalTerm``, ...), ``body``
    its members as JSON text (without ``type`` and ``id``, which are derived), checked against
    botocore's ``marketplace-agreement`` model when the catalog is loaded."""

    key: str
    body: str


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer of a product, with its terms. ``buyers`` empty: a public offer, any buyer may
    accept it; else a private offer, for those buyers' accounts only."""

    offer_id: str
    product_code: str
    name: str = ""
    buyers: tuple[str, ...] = ()
    terms: tuple[OfferTerm, ...] = ()

    @property
    def private(self) -> bool:
        return bool(self.buyers)


@dataclass(frozen=True, slots=True)
class AcceptedConfiguration:
    """What the buyer chose when accepting an offer's configurable terms: the contract's
    duration (``selector``, e.g. ``P12M``), the quantity bought per dimension, and whether the
    agreement renews automatically (``None``: as the offer's renewal term says)."""

    selector: str | None = None
    dimensions: tuple[tuple[str, int], ...] = ()
    auto_renew: bool | None = None

    @property
    def empty(self) -> bool:
        return self.selector is None and not self.dimensions and self.auto_renew is None


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
    entitlements: tuple[Entitlement, ...] = ()  # by dimension, as the catalog lists them
    configuration: AcceptedConfiguration = AcceptedConfiguration()  # the buyer's choices

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

    def expiration_of(self, entitlement: Entitlement) -> float | None:
        """When ``entitlement`` expires: its own date, else the agreement's end."""
        return entitlement.expires_at if entitlement.expires_at is not None else self.ends_at

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
    offers: tuple[Offer, ...] = ()


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
    # a buyer's agreements (most buyers have one): keyed by the account id alone, so no key
    # tuple per agreement (``agreements_of`` picks the product's)
    agreements_by_buyer: dict[str, Agreement | tuple[Agreement, ...]] = field(init=False)
    key_owners: dict[str, KeyOwner] = field(init=False)
    offers: dict[str, Offer] = field(init=False)

    def __post_init__(self) -> None:
        catalog = self.catalog
        set_ = object.__setattr__
        set_(self, "offers", {o.offer_id: o for o in catalog.offers})
        set_(self, "products", {p.product_code: p for p in catalog.products})
        set_(self, "buyers", {b.account_id: b for b in catalog.buyers})
        set_(
            self,
            "buyers_by_customer_identifier",
            {b.customer_identifier: b for b in catalog.buyers if b.customer_identifier},
        )
        set_(self, "agreements_by_license", {a.license_arn: a for a in catalog.agreements})
        by_buyer: dict[str, Agreement | tuple[Agreement, ...]] = {}
        for agreement in catalog.agreements:
            buyer = agreement.buyer_account_id
            held = by_buyer.setdefault(buyer, agreement)
            if held is not agreement:
                listed = held if type(held) is tuple else (held,)
                by_buyer[buyer] = (*listed, agreement)
        set_(self, "agreements_by_buyer", by_buyer)
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
        held = self.agreements_by_buyer.get(buyer_account_id)
        if held is None:
            return ()
        if isinstance(held, Agreement):
            return (held,) if held.product_code == product_code else ()
        return tuple(a for a in held if a.product_code == product_code)

    def offer_refusal(self, offer_id: str, product_code: str, buyer_account_id: str) -> str | None:
        """Why the buyer cannot accept this offer of the catalog (another product's, or a
        private offer not extended to the buyer); ``None`` if it can, or if the catalog does
        not hold the offer (its terms are then derived: docs/catalog.md, "Offers")."""
        offer = self.offers.get(offer_id)
        if offer is None:
            return None
        if offer.product_code != product_code:
            return f"{offer_id} is an offer of {offer.product_code}"
        if offer.private and buyer_account_id not in offer.buyers:
            return f"{offer_id} is a private offer not extended to {buyer_account_id}"
        return None

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

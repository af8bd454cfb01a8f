"""The entries of a catalog file as pydantic models (unknown fields refused, so typos
surface), the bounds every catalog document is held to (docs/catalog.md lists them) and
``CatalogError``, the problem list of a catalog that cannot be applied."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from marketmeter.catalog.model import NotificationKind, NotificationTarget, TargetKind

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_CHARS",
    "MAX_ENTRIES",
    "MAX_NODES",
    "MAX_NUL_PROBLEMS",
    "MAX_STREAM_ENTRIES",
    "SECTIONS",
    "AccessKeyEntry",
    "AgreementEntry",
    "BuyerEntry",
    "CatalogEntry",
    "CatalogError",
    "ConfigurationEntry",
    "EntitlementEntry",
    "OfferEntry",
    "ProductEntry",
    "SellerEntry",
    "TargetEntry",
    "check_targets",
    "stored_targets",
    "target_entry",
]

AccountId = str

MAX_DOCUMENT_CHARS = 4 * 1024 * 1024  # a document held at once, in characters
MAX_DEPTH = 16  # nesting levels (a catalog file needs 5: file, section, entry, keys, key)
MAX_NODES = 500_000  # values in a document held at once (in each entry of a streamed one),
# each alias counted every time it is used
MAX_ENTRIES = 20_000  # entries of a document held at once (an admin API body), all sections
MAX_STREAM_ENTRIES = 2_000_000  # entries of a file or body read entry by entry (streamed)
MAX_DIMENSIONS = 1_000  # per product
MAX_NOTIFICATION_URLS = 100  # per product
MAX_OFFER_BUYERS = 1_000  # accounts a private offer is extended to
MAX_TERMS = 50  # terms of an offer
MAX_NAME = 1_024  # characters of a seller's, product's or buyer's name
MAX_SECRET = 1_024  # characters of a secret access key
MAX_URL = 2_048  # characters of a registration or notification URL
MAX_IDENTIFIER = 1_024  # characters of a product code, dimension or CustomerIdentifier (the
# service model's own limit, 255, is checked next, with its own message)
MAX_ENTITLEMENTS = 1_000  # per agreement
MAX_NUL_PROBLEMS = 20  # NUL characters reported (the rest are not listed)

Name = Annotated[str, Field(max_length=MAX_NAME)]
Url = Annotated[str, Field(max_length=MAX_URL, pattern=r"^https?://")]
Identifier = Annotated[str, Field(max_length=MAX_IDENTIFIER)]


class CatalogError(Exception):
    """A catalog file that cannot be applied; ``problems`` name entry and field each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing applied:\n{lines}")


class CatalogEntry(BaseModel):
    """An entry of a catalog file; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessKeyEntry(CatalogEntry):
    """An access key pair of a seller or a buyer."""

    access_key_id: str = Field(min_length=16, max_length=128, pattern=r"^[A-Z0-9]+$")
    secret_access_key: str = Field(min_length=1, max_length=MAX_SECRET)


class SellerEntry(CatalogEntry):
    """A seller account (``sellers:``)."""

    account_id: AccountId = Field(pattern=r"^[0-9]{12}$")
    name: Name = ""
    access_keys: list[AccessKeyEntry] = []


class TargetEntry(CatalogEntry):
    """A delivery target of a product (``notification_targets:``,
    docs/subscription-lifecycle.md): ``kind`` and its own fields, the notification kinds it
    receives (default: every kind it can carry) and the endpoint it talks to."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    kind: Literal["sns", "sqs", "eventbridge", "http"]
    notifications: list[Literal["subscription", "entitlement", "agreement"]] | None = None
    endpoint_url: Url | None = None
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    access_key_id: str | None = Field(default=None, min_length=1, max_length=128)
    secret_access_key: str | None = Field(default=None, min_length=1, max_length=MAX_SECRET)
    topic_arn: str | None = Field(default=None, pattern=r"^arn:[^:]+:sns:", max_length=MAX_URL)
    queue_url: Url | None = None
    raw_delivery: bool = False
    event_bus: str = Field(default="default", min_length=1, max_length=MAX_URL)
    url: Url | None = None
    sns_protocol: bool = False
    paused: bool = False


# The notification kinds each target kind can carry (an sns target carries EventBridge events
# only to a topic it names: AWS's topics are the SNS messages').
_TARGET_CARRIES: dict[str, tuple[NotificationKind, ...]] = {
    "sns": (NotificationKind.SUBSCRIPTION, NotificationKind.ENTITLEMENT),
    "sqs": tuple(NotificationKind),
    "eventbridge": (NotificationKind.AGREEMENT,),
    "http": tuple(NotificationKind),
}


def _target(entry: TargetEntry, where: str, problems: list[str]) -> NotificationTarget:
    """The target of ``entry``; what is missing or inconsistent goes to ``problems``."""
    carries = _TARGET_CARRIES[entry.kind]
    if entry.kind == "sns" and entry.topic_arn is not None:
        carries = tuple(NotificationKind)
    if entry.sns_protocol:  # SNS's HTTP(S) protocol carries SNS messages
        carries = _TARGET_CARRIES["sns"]
        if entry.kind != "http":
            problems.append(f"{where}: sns_protocol: only for an http target")
    wanted = (
        carries
        if entry.notifications is None
        else tuple(map(NotificationKind, entry.notifications))
    )
    for kind in wanted:
        if kind not in carries:
            problems.append(f"{where}: notifications: a {entry.kind} target cannot carry {kind}")
    if entry.raw_delivery and entry.kind not in ("sqs", "http"):
        problems.append(f"{where}: raw_delivery: only for an sqs or http target")
    required = {"sqs": "queue_url", "http": "url"}.get(entry.kind)
    if required is not None and getattr(entry, required) is None:
        problems.append(f"{where}: {required}: required for a {entry.kind} target")
    if (entry.access_key_id is None) != (entry.secret_access_key is None):
        problems.append(f"{where}: access_key_id and secret_access_key go together")
    return NotificationTarget(
        name=entry.name,
        kind=TargetKind(entry.kind),
        notifications=tuple(dict.fromkeys(wanted)),
        endpoint_url=entry.endpoint_url,
        region=entry.region,
        access_key_id=entry.access_key_id,
        secret_access_key=entry.secret_access_key,
        topic_arn=entry.topic_arn,
        queue_url=entry.queue_url,
        raw_delivery=entry.raw_delivery,
        event_bus=entry.event_bus,
        url=entry.url,
        sns_protocol=entry.sns_protocol,
        paused=entry.paused,
    )


def check_targets(
    entries: list[TargetEntry], where: str, problems: list[str]
) -> tuple[NotificationTarget, ...]:
    """A product's targets; what is wrong with them goes to ``problems``."""
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        problems.append(f"{where}: notification_targets: a name is listed twice")
    return tuple(
        _target(entry, f"{where}: notification_targets[{i}] ({entry.name})", problems)
        for i, entry in enumerate(entries)
    )


def stored_targets(entries: list[dict[str, Any]]) -> tuple[NotificationTarget, ...]:
    """Targets as ``target_entry`` wrote them (the store's JSON column), checked again."""
    problems: list[str] = []
    targets = check_targets([TargetEntry.model_validate(e) for e in entries], "stored", problems)
    if problems:
        raise CatalogError("stored notification targets", problems)
    return targets


def target_entry(target: NotificationTarget) -> dict[str, Any]:
    """A target as its catalog entry (the fields that differ from the defaults, and always
    ``name``, ``kind`` and ``notifications``)."""
    entry = TargetEntry(
        name=target.name,
        kind=target.kind.value,
        notifications=[kind.value for kind in target.notifications],
        endpoint_url=target.endpoint_url,
        region=target.region,
        access_key_id=target.access_key_id,
        secret_access_key=target.secret_access_key,
        topic_arn=target.topic_arn,
        queue_url=target.queue_url,
        raw_delivery=target.raw_delivery,
        event_bus=target.event_bus,
        url=target.url,
        sns_protocol=target.sns_protocol,
        paused=target.paused,
    )
    return {
        "name": entry.name,
        "kind": entry.kind,
        "notifications": entry.notifications,
        **entry.model_dump(mode="json", exclude_defaults=True),
    }


class ProductEntry(CatalogEntry):
    """A product and its dimensions (``products:``)."""

    product_code: Identifier
    seller: AccountId
    kind: Literal["saas", "ami", "container"]
    dimensions: list[Identifier] = Field(min_length=1, max_length=MAX_DIMENSIONS)
    integration: Literal["legacy", "concurrent-agreements"] = "legacy"
    name: Name = ""
    registration_url: Url | None = None
    per_request_metering: bool = False
    notification_urls: list[Url] = Field(default=[], max_length=MAX_NOTIFICATION_URLS)
    notification_targets: list[TargetEntry] = Field(default=[], max_length=MAX_NOTIFICATION_URLS)
    pricing_model: Literal["usage", "contract", "contract-with-consumption"] = "usage"


class BuyerEntry(CatalogEntry):
    """A buyer account (``buyers:``)."""

    account_id: AccountId = Field(pattern=r"^[0-9]{12}$")
    customer_identifier: Identifier | None = None
    name: Name = ""
    access_keys: list[AccessKeyEntry] = []


class EntitlementEntry(CatalogEntry):
    """What an agreement entitles its buyer to for one dimension (``entitlements:``): a
    whole number (IntegerValue), a fraction (DoubleValue), true/false (BooleanValue) or text
    (StringValue); ``expires`` defaults to the agreement's end."""

    dimension: Identifier
    value: StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=MAX_NAME)]
    expires: datetime | None = None


class OfferEntry(CatalogEntry):
    """An offer of a product and its terms (``offers:``): public without ``buyers``, private
    to the listed buyers' accounts otherwise. Each term is one mapping ``{<term>: {...}}`` in
    the Agreement API's own shape (``usageBasedPricingTerm``, ``legalTerm``, ...; docs/catalog.md,
    "Offers")."""

    offer_id: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    product: str
    name: Name = ""
    buyers: list[AccountId] = Field(default=[], max_length=MAX_OFFER_BUYERS)
    terms: list[dict[str, Any]] = Field(default=[], max_length=MAX_TERMS)


class ConfigurationEntry(CatalogEntry):
    """What the buyer chose on the offer's configurable terms (an agreement's
    ``configuration:``): the contract duration, the quantity per dimension, auto-renewal."""

    selector: str | None = Field(default=None, min_length=2, max_length=64, pattern=r"^P\w+$")
    dimensions: dict[Identifier, int] = Field(default={}, max_length=MAX_DIMENSIONS)
    auto_renew: bool | None = None


class AgreementEntry(CatalogEntry):
    """A buyer's agreement for a product (``agreements:``)."""

    buyer: AccountId
    product: str
    license_arn: str | None = None
    state: Literal["subscribed", "unsubscribe-pending", "unsubscribed", "suspended"] = "subscribed"
    start: datetime | None = None
    end: datetime | None = None
    free_trial: bool = False
    entitlements: list[EntitlementEntry] = Field(default=[], max_length=MAX_ENTITLEMENTS)
    offer: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^\S+$")
    configuration: ConfigurationEntry | None = None


# The sections of a catalog file, in the order they are checked (and written).
SECTIONS: dict[str, type[CatalogEntry]] = {
    "sellers": SellerEntry,
    "products": ProductEntry,
    "buyers": BuyerEntry,
    "agreements": AgreementEntry,
    "offers": OfferEntry,
}

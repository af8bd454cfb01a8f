"""Reading a catalog file (YAML) into a validated ``Catalog``.

Fields are checked by pydantic models (unknown fields refused, so typos surface); identifiers
that reach the wire (product codes, dimensions, customer identifiers) are checked against the
service model's own constraints; references (a product's seller, an agreement's buyer and
product) are resolved against the file plus the catalog already stored. Every problem is
reported at once, each naming its entry and field, e.g.::

    products[1] (demo-saas): kind: Input should be 'saas', 'ami' or 'container'

A file with any problem is not applied at all.

Sizes are bounded, far beyond any real catalog, so that a hostile or broken file is a problem
list rather than a traceback, a stalled server or a value PostgreSQL cannot store (the bounds
below; docs/catalog.md lists them): the document's size, its nesting depth and node count
(aliases counted each time they are used), the entries of a file, the dimensions and
notification URLs of a product, the length of every name, secret, URL and identifier; and no
text may hold a NUL (U+0000), which SQLite would store and PostgreSQL cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from marketmeter.catalog.model import (
    LICENSE_ARN_FORMAT,
    LICENSE_ISSUER_ACCOUNT,
    AcceptedConfiguration,
    AccessKey,
    Agreement,
    AgreementState,
    Buyer,
    Catalog,
    Entitlement,
    Integration,
    NotificationKind,
    NotificationTarget,
    Offer,
    PricingModel,
    Product,
    ProductKind,
    Seller,
    TargetKind,
    entitlement_problems,
    legacy_license_arn_for,
    license_arn_for,
)
from marketmeter.catalog.offers import check_offer_terms
from marketmeter.servicemodel.spec import service_model
from marketmeter.servicemodel.validation import Violations, compile_shape

__all__ = [
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
    "load_catalog",
    "load_catalog_data",
    "load_catalog_file",
    "read_catalog_text",
    "stored_targets",
    "target_entry",
]

AccountId = str

MAX_DOCUMENT_CHARS = 4 * 1024 * 1024  # a catalog document, in characters
MAX_DEPTH = 16  # nesting levels (a catalog file needs 5: file, section, entry, keys, key)
MAX_NODES = 500_000  # values in the document, each alias counted every time it is used
MAX_ENTRIES = 20_000  # entries of a file, all sections together
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
_MAX_NUL_PROBLEMS = 20

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


def _targets(
    entries: list[TargetEntry], where: str, problems: list[str]
) -> tuple[NotificationTarget, ...]:
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
    targets = _targets([TargetEntry.model_validate(e) for e in entries], "stored", problems)
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


class _File(CatalogEntry):
    sellers: list[SellerEntry] = []
    products: list[ProductEntry] = []
    offers: list[OfferEntry] = []
    buyers: list[BuyerEntry] = []
    agreements: list[AgreementEntry] = []


def read_catalog_text(path: str | Path) -> str:
    """A catalog file's text; ``CatalogError`` if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(str(path), [f"cannot read the file: {error.strerror}"]) from error


def load_catalog_file(path: str | Path, existing: Catalog | None = None) -> Catalog:
    """Read and validate a catalog file; raise ``CatalogError`` listing every problem."""
    return load_catalog(read_catalog_text(path), existing, source=str(path))


def load_catalog(text: str, existing: Catalog | None = None, source: str = "catalog") -> Catalog:
    """Validate catalog YAML ``text``; references may point into ``existing``."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise CatalogError(source, [f"the document is longer than {MAX_DOCUMENT_CHARS} characters"])
    try:
        raw = yaml.load(text, Loader=_LOADER)  # a safe loader
    except yaml.YAMLError as error:
        raise CatalogError(source, [f"not valid YAML: {error}"]) from error
    except RecursionError:
        raise CatalogError(source, [_too_deep()]) from None
    return load_catalog_data(raw, existing, source)


# libyaml's parser when PyYAML has it (ten times faster on a large file), the same safe types
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _too_deep() -> str:
    return f"the document nests deeper than {MAX_DEPTH} levels"


def _document_problems(raw: Any) -> list[str]:
    """The document's shape against the bounds: depth, node count, NUL characters; walked
    without recursion, stopping at the first bound exceeded."""
    problems: list[str] = []
    nodes = 0
    stack: list[tuple[Any, int, str]] = [(raw, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return [f"the document has more than {MAX_NODES} values"]
        if depth > MAX_DEPTH:
            return [_too_deep()]
        if isinstance(value, str):
            if "\x00" in value and len(problems) < _MAX_NUL_PROBLEMS:
                problems.append(f"{path or 'the document'}: must not contain NUL (U+0000)")
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                if "\x00" in name and len(problems) < _MAX_NUL_PROBLEMS:
                    problems.append(f"{path or 'the document'}: a key must not contain NUL")
                    name = name.replace("\x00", "\\0")
                stack.append((item, depth + 1, f"{path}.{name[:64]}" if path else name[:64]))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
    return problems


def load_catalog_data(
    raw: Any, existing: Catalog | None = None, source: str = "catalog"
) -> Catalog:
    """Validate a catalog already read into Python values (YAML or JSON: a mapping of
    sections to lists of entries); references may point into ``existing``. The admin API
    checks one entry at a time this way (``{"products": [entry]}``)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CatalogError(source, ["the file must be a mapping with sellers, products, ..."])
    problems = _document_problems(raw)
    if problems:
        raise CatalogError(source, problems)
    entries = sum(len(v) for v in raw.values() if isinstance(v, list))
    if entries > MAX_ENTRIES:
        raise CatalogError(source, [f"the file has {entries} entries, more than {MAX_ENTRIES}"])
    parsed = _parse_entries(raw, problems)
    catalog = _build(parsed, existing or Catalog(), problems)
    if problems:
        raise CatalogError(source, problems)
    return catalog


_SECTIONS: dict[str, type[CatalogEntry]] = {
    "sellers": SellerEntry,
    "products": ProductEntry,
    "buyers": BuyerEntry,
    "agreements": AgreementEntry,
    "offers": OfferEntry,
}


def _parse_entries(raw: dict[str, Any], problems: list[str]) -> _File:
    """Check each entry on its own, so that one bad entry hides no problem of another."""
    for key in raw:
        if key not in _SECTIONS:
            problems.append(f"{key}: unknown section; known: {', '.join(_SECTIONS)}")
    sections: dict[str, list[Any]] = {}
    for section, model in _SECTIONS.items():
        entries = raw.get(section) or []
        if not isinstance(entries, list):
            problems.append(f"{section}: must be a list")
            continue
        parsed = []
        for index, entry in enumerate(entries):
            try:
                parsed.append(model.model_validate(entry))
            except ValidationError as error:
                for detail in error.errors():
                    detail["loc"] = (section, index, *detail["loc"])
                    problems.append(_describe(raw, detail))
        sections[section] = parsed
    return _File.model_validate(sections)


def _describe(raw: dict[str, Any], error: Any) -> str:
    location = list(error["loc"])
    where = ""
    if len(location) >= 2 and isinstance(location[1], int):
        section, index = location[0], location[1]
        where = f"{section}[{index}]{_label(raw, section, index)}"
        rest = location[2:]
    else:
        rest = location
    field = ".".join(str(part) for part in rest)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    parts = [part for part in (where, field) if part]
    return f"{': '.join(parts)}: {message}" if parts else message


def _label(raw: dict[str, Any], section: str, index: int) -> str:
    entries = raw.get(section)
    if not isinstance(entries, list) or index >= len(entries):
        return ""
    entry = entries[index]
    if not isinstance(entry, dict):
        return ""
    for key in ("product_code", "account_id", "license_arn", "offer_id"):
        if isinstance(entry.get(key), str | int):
            return f" ({entry[key]})"
    if "buyer" in entry and "product" in entry:
        return f" ({entry['buyer']} × {entry['product']})"
    return ""


def _wire_check(shape_name: str, value: str, where: str, problems: list[str]) -> None:
    """Check an identifier with the service model's own constraints for that shape."""
    violations = Violations()
    compile_shape(service_model().shape_for(shape_name))(value, where, violations)
    problems.extend(
        v.replace("Member must", "must")
        .replace(f" at '{where}'", "")
        .replace("Value", f"{where}:", 1)
        for v in violations
    )


def _derived_license_arn(
    buyer: str, product: str, start: float | None, existing_arns: set[str]
) -> str:
    """The LicenseArn of an agreement the catalog gives none: AWS's form, unless the ledger
    already holds this agreement under the ARN earlier versions derived (buyer's account)."""
    legacy = legacy_license_arn_for(buyer, product, str(start))
    if legacy in existing_arns:
        return legacy
    return license_arn_for(buyer, product, str(start))


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _keys(entries: Iterable[AccessKeyEntry]) -> tuple[AccessKey, ...]:
    return tuple(AccessKey(k.access_key_id, k.secret_access_key) for k in entries)


def _build(parsed: _File, existing: Catalog, problems: list[str]) -> Catalog:
    seller_ids = {s.account_id for s in existing.sellers}
    product_codes = {p.product_code for p in existing.products}
    buyer_ids = {b.account_id for b in existing.buyers}
    key_owner: dict[str, str] = {}
    owners: list[Seller | Buyer] = [*existing.sellers, *existing.buyers]
    for owner in owners:
        for key in owner.access_keys:
            key_owner[key.access_key_id] = owner.account_id
    identifier_owner = {
        b.customer_identifier: b.account_id for b in existing.buyers if b.customer_identifier
    }

    def claim_keys(where: str, account: str, keys: list[AccessKeyEntry]) -> None:
        for i, key in enumerate(keys):
            owner = key_owner.setdefault(key.access_key_id, account)
            if owner != account:
                problems.append(
                    f"{where}: access_keys[{i}].access_key_id: {key.access_key_id} already "
                    f"belongs to account {owner}"
                )

    sellers = []
    seen: set[str] = set()
    for i, s in enumerate(parsed.sellers):
        where = f"sellers[{i}] ({s.account_id})"
        if s.account_id in seen:
            problems.append(f"{where}: account_id: listed twice")
        seen.add(s.account_id)
        claim_keys(where, s.account_id, s.access_keys)
        sellers.append(Seller(s.account_id, s.name, _keys(s.access_keys)))
    seller_ids |= seen

    products = []
    seen = set()
    for i, p in enumerate(parsed.products):
        where = f"products[{i}] ({p.product_code})"
        _wire_check("ProductCode", p.product_code, f"{where}: product_code", problems)
        if not p.product_code:
            problems.append(f"{where}: product_code: must not be empty")
        if p.product_code in seen:
            problems.append(f"{where}: product_code: listed twice")
        seen.add(p.product_code)
        if p.seller not in seller_ids:
            problems.append(f"{where}: seller: no seller with account_id {p.seller}")
        if len(set(p.dimensions)) != len(p.dimensions):
            problems.append(f"{where}: dimensions: a dimension is listed twice")
        for j, dimension in enumerate(p.dimensions):
            _wire_check("UsageDimension", dimension, f"{where}: dimensions[{j}]", problems)
        products.append(
            Product(
                product_code=p.product_code,
                seller_account_id=p.seller,
                kind=ProductKind(p.kind),
                dimensions=tuple(p.dimensions),
                integration=Integration(p.integration),
                name=p.name,
                registration_url=p.registration_url,
                per_request_metering=p.per_request_metering,
                notification_urls=tuple(p.notification_urls),
                notification_targets=_targets(p.notification_targets, where, problems),
                pricing_model=PricingModel(p.pricing_model),
            )
        )
    product_codes |= seen
    known_products = {p.product_code: p for p in existing.products}
    known_products.update((p.product_code, p) for p in products)

    buyers = []
    seen = set()
    for i, b in enumerate(parsed.buyers):
        where = f"buyers[{i}] ({b.account_id})"
        if b.account_id in seen or b.account_id in seller_ids:
            problems.append(f"{where}: account_id: listed twice (buyers and sellers included)")
        seen.add(b.account_id)
        if b.customer_identifier is not None:
            _wire_check(
                "CustomerIdentifier",
                b.customer_identifier,
                f"{where}: customer_identifier",
                problems,
            )
            holder = identifier_owner.setdefault(b.customer_identifier, b.account_id)
            if holder != b.account_id or not b.customer_identifier:
                problems.append(
                    f"{where}: customer_identifier: {b.customer_identifier!r} is empty or "
                    f"already used by buyer {holder}"
                )
        claim_keys(where, b.account_id, b.access_keys)
        buyers.append(Buyer(b.account_id, b.customer_identifier, b.name, _keys(b.access_keys)))
    buyer_ids |= seen

    offers = _offers(parsed, existing, products, product_codes, buyer_ids, problems)
    known_offers = {o.offer_id: o for o in existing.offers} | {o.offer_id: o for o in offers}

    agreements = []
    seen = set()
    existing_arns = {agreement.license_arn for agreement in existing.agreements}
    for i, a in enumerate(parsed.agreements):
        start, end = _epoch(a.start), _epoch(a.end)
        arn = a.license_arn or _derived_license_arn(a.buyer, a.product, start, existing_arns)
        where = f"agreements[{i}] ({a.buyer} × {a.product})"
        if a.buyer not in buyer_ids:
            problems.append(f"{where}: buyer: no buyer with account_id {a.buyer}")
        if a.product not in product_codes:
            problems.append(f"{where}: product: no product with product_code {a.product}")
        if LICENSE_ARN_FORMAT.fullmatch(arn) is None:
            problems.append(
                f"{where}: license_arn: must look like "
                f"arn:aws:license-manager::{LICENSE_ISSUER_ACCOUNT}:license:l-<32 hex digits>"
            )
        if arn in seen:
            problems.append(f"{where}: license_arn: listed twice")
        seen.add(arn)
        if start is not None and end is not None and end <= start:
            problems.append(f"{where}: end: must be after start")
        entitlements = _entitlements(a, where, known_products.get(a.product), problems)
        if a.offer is not None:
            _check_accepted_offer(known_offers.get(a.offer), a, where, problems)
        agreements.append(
            Agreement(
                arn,
                a.buyer,
                a.product,
                AgreementState(a.state),
                start,
                end,
                a.free_trial,
                entitlements=entitlements,
                offer_id=a.offer,
                configuration=_configuration(a.configuration),
            )
        )
    return Catalog(tuple(sellers), tuple(products), tuple(buyers), tuple(agreements), tuple(offers))


def _entitlements(
    entry: AgreementEntry, where: str, product: Product | None, problems: list[str]
) -> tuple[Entitlement, ...]:
    """The agreement's entitlements, checked (``entitlement_problems``)."""
    found = tuple(
        Entitlement(item.dimension, item.value, _epoch(item.expires)) for item in entry.entitlements
    )
    for index, problem in entitlement_problems(found, product):
        at = "entitlements" if index is None else f"entitlements[{index}]"
        problems.append(f"{where}: {at}: {problem}")
    return found


def _offers(
    parsed: _File,
    existing: Catalog,
    products: list[Product],
    product_codes: set[str],
    buyer_ids: set[str],
    problems: list[str],
) -> list[Offer]:
    """The file's offers, each checked: its product and buyers exist, its terms have the
    Agreement API's shapes (``catalog.offers``)."""
    dimensions = {p.product_code: p.dimensions for p in existing.products}
    dimensions |= {p.product_code: p.dimensions for p in products}
    offers = []
    seen: set[str] = set()
    for i, o in enumerate(parsed.offers):
        where = f"offers[{i}] ({o.offer_id})"
        if o.offer_id in seen:
            problems.append(f"{where}: offer_id: listed twice")
        seen.add(o.offer_id)
        if o.product not in product_codes:
            problems.append(f"{where}: product: no product with product_code {o.product}")
        for j, buyer in enumerate(o.buyers):
            if buyer not in buyer_ids:
                problems.append(f"{where}: buyers[{j}]: no buyer with account_id {buyer}")
        if len(set(o.buyers)) != len(o.buyers):
            problems.append(f"{where}: buyers: a buyer is listed twice")
        terms = check_offer_terms(o.terms, dimensions.get(o.product, ()), where, problems)
        offers.append(Offer(o.offer_id, o.product, o.name, tuple(o.buyers), terms))
    return offers


def _check_accepted_offer(
    offer: Offer | None, entry: AgreementEntry, where: str, problems: list[str]
) -> None:
    if offer is None:
        problems.append(f"{where}: offer: no offer with offer_id {entry.offer}")
        return
    if offer.product_code != entry.product:
        problems.append(f"{where}: offer: {offer.offer_id} is an offer of {offer.product_code}")
    if offer.private and entry.buyer not in offer.buyers:
        problems.append(
            f"{where}: offer: {offer.offer_id} is a private offer not extended to {entry.buyer}"
        )


def _configuration(entry: ConfigurationEntry | None) -> AcceptedConfiguration:
    if entry is None:
        return AcceptedConfiguration()
    return AcceptedConfiguration(entry.selector, tuple(entry.dimensions.items()), entry.auto_renew)

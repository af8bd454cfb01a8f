"""Checking a catalog one entry at a time: fields (the pydantic entry models), the service
model's constraints on identifiers, and references (a product's seller, an agreement's buyer
and product) resolved against the entries before it plus what the ledger already holds
(``KnownKeys``: keys only, never the stored entries themselves).

``CatalogChecker`` takes the entries in the order a document lists them and hands back each
one it found nothing wrong with, as a domain value to write, as soon as everything it refers
to is known: in a file that lists sellers, products, buyers and agreements in that order, at
once; an entry that refers to one listed later is held until ``finish``. ``finish`` returns
every problem in the order the loader always listed them: unknown sections, then each
section's field problems (sellers, products, buyers, agreements; entry by entry), then each
section's problems of meaning, each naming its entry and field, e.g.::

    products[1] (demo-saas): kind: Input should be 'saas', 'ami' or 'container'

What the checker keeps grows with the number of keys (account ids, product codes, LicenseArns,
access key ids, CustomerIdentifiers), not with the entries' other fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from marketmeter.catalog.entries import (
    SECTIONS,
    AccessKeyEntry,
    AgreementEntry,
    BuyerEntry,
    ConfigurationEntry,
    OfferEntry,
    ProductEntry,
    SellerEntry,
    check_targets,
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
    Offer,
    PricingModel,
    Product,
    ProductKind,
    Seller,
    entitlement_problems,
    license_arn_forms,
)
from marketmeter.catalog.offers import check_offer_terms
from marketmeter.servicemodel.spec import service_model
from marketmeter.servicemodel.validation import Checker, Violations, compile_shape

__all__ = ["CatalogChecker", "Entry", "KnownKeys", "OfferKeys", "ProductKeys"]

Entry = Seller | Product | Buyer | Offer | Agreement
# a section's field problems come in the order of SECTIONS; its problems of meaning in the
# order the sections refer to each other (offers before the agreements that accept them)
_ORDER = {section: position for position, section in enumerate(SECTIONS)}
_MEANING = {
    section: position
    for position, section in enumerate(("sellers", "products", "buyers", "offers", "agreements"))
}


@dataclass(frozen=True, slots=True)
class ProductKeys:
    """What checking an agreement's entitlements and an offer's terms needs of a product."""

    dimensions: tuple[str, ...]
    pricing_model: PricingModel


@dataclass(frozen=True, slots=True)
class OfferKeys:
    """What checking an agreement that accepts an offer needs of the offer."""

    product_code: str
    buyers: tuple[str, ...]


@dataclass
class KnownKeys:
    """What the stored catalog holds that a new entry may refer to or clash with."""

    sellers: set[str] = field(default_factory=set)
    products: dict[str, ProductKind] = field(default_factory=dict)  # product code: kind
    buyers: set[str] = field(default_factory=set)
    key_owners: dict[str, str] = field(default_factory=dict)  # access key id: account id
    identifier_owners: dict[str, str] = field(default_factory=dict)  # CustomerIdentifier: buyer
    license_arns: set[str] = field(default_factory=set)
    product_keys: dict[str, ProductKeys] = field(default_factory=dict)
    offers: dict[str, OfferKeys] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: Catalog) -> KnownKeys:
        owners: list[Seller | Buyer] = [*catalog.sellers, *catalog.buyers]
        return cls(
            sellers={s.account_id for s in catalog.sellers},
            products={p.product_code: p.kind for p in catalog.products},
            buyers={b.account_id for b in catalog.buyers},
            key_owners={k.access_key_id: o.account_id for o in owners for k in o.access_keys},
            identifier_owners={
                b.customer_identifier: b.account_id for b in catalog.buyers if b.customer_identifier
            },
            license_arns={a.license_arn for a in catalog.agreements},
            product_keys={
                p.product_code: ProductKeys(p.dimensions, p.pricing_model) for p in catalog.products
            },
            offers={o.offer_id: OfferKeys(o.product_code, o.buyers) for o in catalog.offers},
        )


# A problem's place in the list: (phase: 0 unknown section, 1 fields, 2 meaning; section's
# position; entry index; the problem's position among its entry's).
_Key = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Reference:
    """A reference to an entry of ``section`` that may still be listed later."""

    section: str
    value: str
    problem: str


@dataclass(frozen=True, slots=True)
class _Later:
    """A check that needs what ``section`` holds: run once that section is closed (or at
    ``finish``); ``check`` returns its problems."""

    section: str
    check: Callable[[], list[str]]


class CatalogChecker:
    """Checks entries one by one against ``known`` (see the module's docstring), which it
    grows with the catalog's own keys (its ``license_arns`` stay the ledger's)."""

    def __init__(self, known: KnownKeys) -> None:
        self._known = known
        self._problems: list[tuple[_Key, str]] = []
        self._closed: set[str] = set()
        self._seen_sections: set[str] = set()
        # grown in place: the known keys and the catalog's so far
        self._sellers = known.sellers
        self._products = known.products
        self._buyers = known.buyers
        self._key_owners = known.key_owners
        self._identifier_owners = known.identifier_owners
        self._file_sellers: set[str] = set()
        self._file_products: set[str] = set()
        self._file_buyers: dict[str, int] = {}  # account id: index of its first entry
        self._flagged_buyers: set[str] = set()
        # LicenseArns of the file: those the ledger holds are crossed off a copy of its set
        # (no second string each when a large catalog is applied again), the others kept
        self._ledger_arns_unseen = set(known.license_arns)
        self._file_arns: set[str] = set()
        self._product_keys = known.product_keys
        self._offers = known.offers
        self._file_offers: set[str] = set()
        self._pending: list[tuple[Entry, list[tuple[_Key, _Reference | _Later]]]] = []
        # offers whose product is listed later: checked at ``finish``
        self._late_offers: list[tuple[int, OfferEntry]] = []

    @property
    def failed(self) -> bool:
        """True once a problem is known (nothing of the catalog will be applied)."""
        return bool(self._problems)

    @property
    def product_kinds(self) -> dict[str, ProductKind]:
        """Every product's kind: the ledger's and the catalog's so far."""
        return self._products

    def _problem(self, key: _Key, message: str) -> None:
        self._problems.append((key, message))

    # --- sections -------------------------------------------------------------------------

    def section(self, name: str, value: Any = None, is_list: bool = True) -> bool:
        """A section starts (``is_list``) or is a whole value that is not a list; True if its
        entries are to be checked."""
        if name not in SECTIONS:
            self._problem(
                (0, 0, 0, len(self._problems)),
                f"{name}: unknown section; known: {', '.join(SECTIONS)}",
            )
            return False
        if name in self._seen_sections:
            self._problem((1, _ORDER[name], -1, 0), f"{name}: listed twice")
        self._seen_sections.add(name)
        if not is_list:
            if value:
                self._problem((1, _ORDER[name], -1, 0), f"{name}: must be a list")
            self._closed.add(name)
            return False
        return True

    def close(self, name: str) -> None:
        """The section's list ended."""
        self._closed.add(name)

    # --- entries --------------------------------------------------------------------------

    def entry(self, section: str, index: int, raw: Any) -> Entry | None:
        """Check one entry; the domain value if it can be written now."""
        model = SECTIONS[section]
        try:
            parsed = model.model_validate(raw)
        except ValidationError as error:
            order = _ORDER[section]
            label = _label(raw)
            for seq, detail in enumerate(error.errors()):
                self._problem((1, order, index, seq), _describe(section, index, label, detail))
            return None
        problems: list[str | _Reference | _Later] = []
        value: Entry
        if isinstance(parsed, OfferEntry):
            if parsed.product not in self._product_keys and "products" not in self._closed:
                # its terms are checked against the product's dimensions: wait for them
                self._offers[parsed.offer_id] = OfferKeys(parsed.product, tuple(parsed.buyers))
                self._late_offers.append((index, parsed))
                return None
            value = self._offer(index, parsed, problems)
        elif isinstance(parsed, SellerEntry):
            value = self._seller(index, parsed, problems)
        elif isinstance(parsed, ProductEntry):
            value = self._product(index, parsed, problems)
        elif isinstance(parsed, BuyerEntry):
            value = self._buyer(index, parsed, problems)
        else:
            assert isinstance(parsed, AgreementEntry)
            value = self._agreement(index, parsed, problems)
        return self._decide(_MEANING[section], index, value, problems)

    def _decide(
        self, order: int, index: int, value: Entry, problems: list[str | _Reference | _Later]
    ) -> Entry | None:
        if not problems:
            return None if self._problems else value
        waiting: list[tuple[_Key, _Reference | _Later]] = []
        for seq, problem in enumerate(problems):
            key = (2, order, index, seq)
            if isinstance(problem, str):
                self._problem(key, problem)
            elif isinstance(problem, _Later):
                if problem.section in self._closed:
                    for found in problem.check():
                        self._problem(key, found)
                else:
                    waiting.append((key, problem))
            elif not self._resolved(problem):
                if problem.section in self._closed:
                    self._problem(key, problem.problem)
                else:
                    waiting.append((key, problem))
        if waiting:
            self._pending.append((value, waiting))
            return None
        return None if self._problems else value

    def _resolved(self, reference: _Reference) -> bool:
        if reference.section == "sellers":
            return reference.value in self._sellers
        if reference.section == "buyers":
            return reference.value in self._buyers
        if reference.section == "offers":
            return reference.value in self._offers
        return reference.value in self._products

    def finish(self) -> tuple[list[str], list[Entry]]:
        """Every problem, in order, and the entries held until now (when there is none)."""
        self._closed.update(SECTIONS)
        held: list[Entry] = []
        for index, parsed in self._late_offers:
            found: list[str | _Reference | _Later] = []
            offer = self._offer(index, parsed, found)
            ready = self._decide(_MEANING["offers"], index, offer, found)
            if ready is not None:
                held.append(ready)
        for value, waiting in self._pending:
            for key, reference in waiting:
                if isinstance(reference, _Later):
                    for message in reference.check():
                        self._problem(key, message)
                elif not self._resolved(reference):
                    self._problem(key, reference.problem)
            held.append(value)
        # a buyer listed before a seller with its account id
        order = _MEANING["buyers"]
        for account in sorted(self._file_sellers & self._file_buyers.keys()):
            if account not in self._flagged_buyers:
                index = self._file_buyers[account]
                self._problem((2, order, index, -1), _buyer_twice(index, account))
        self._problems.sort(key=lambda problem: problem[0])
        problems = [message for _, message in self._problems]
        return problems, ([] if problems else sorted(held, key=_write_order))

    # --- each section's meaning -----------------------------------------------------------

    def _claim_keys(
        self, where: str, account: str, keys: list[AccessKeyEntry], problems: list[str | Any]
    ) -> None:
        for i, key in enumerate(keys):
            owner = self._key_owners.setdefault(key.access_key_id, account)
            if owner != account:
                problems.append(
                    f"{where}: access_keys[{i}].access_key_id: {key.access_key_id} already "
                    f"belongs to account {owner}"
                )

    def _seller(self, i: int, s: SellerEntry, problems: list[str | _Reference | _Later]) -> Seller:
        where = f"sellers[{i}] ({s.account_id})"
        if s.account_id in self._file_sellers:
            problems.append(f"{where}: account_id: listed twice")
        self._file_sellers.add(s.account_id)
        self._sellers.add(s.account_id)
        self._claim_keys(where, s.account_id, s.access_keys, problems)
        return Seller(s.account_id, s.name, _keys(s.access_keys))

    def _product(
        self, i: int, p: ProductEntry, problems: list[str | _Reference | _Later]
    ) -> Product:
        where = f"products[{i}] ({p.product_code})"
        _wire_check("ProductCode", p.product_code, f"{where}: product_code", problems)
        if not p.product_code:
            problems.append(f"{where}: product_code: must not be empty")
        if p.product_code in self._file_products:
            problems.append(f"{where}: product_code: listed twice")
        self._file_products.add(p.product_code)
        self._products[p.product_code] = ProductKind(p.kind)
        problems.append(
            _Reference(
                "sellers", p.seller, f"{where}: seller: no seller with account_id {p.seller}"
            )
        )
        if len(set(p.dimensions)) != len(p.dimensions):
            problems.append(f"{where}: dimensions: a dimension is listed twice")
        for j, dimension in enumerate(p.dimensions):
            _wire_check("UsageDimension", dimension, f"{where}: dimensions[{j}]", problems)
        target_problems: list[str] = []
        targets = check_targets(p.notification_targets, where, target_problems)
        problems.extend(target_problems)
        pricing_model = PricingModel(p.pricing_model)
        self._product_keys[p.product_code] = ProductKeys(tuple(p.dimensions), pricing_model)
        return Product(
            product_code=p.product_code,
            seller_account_id=p.seller,
            kind=ProductKind(p.kind),
            dimensions=tuple(p.dimensions),
            integration=Integration(p.integration),
            name=p.name,
            registration_url=p.registration_url,
            per_request_metering=p.per_request_metering,
            notification_urls=tuple(p.notification_urls),
            notification_targets=targets,
            pricing_model=pricing_model,
        )

    def _buyer(self, i: int, b: BuyerEntry, problems: list[str | _Reference | _Later]) -> Buyer:
        where = f"buyers[{i}] ({b.account_id})"
        if b.account_id in self._file_buyers or b.account_id in self._sellers:
            problems.append(_buyer_twice(i, b.account_id))
            self._flagged_buyers.add(b.account_id)
        self._file_buyers.setdefault(b.account_id, i)
        self._buyers.add(b.account_id)
        if b.customer_identifier is not None:
            _wire_check(
                "CustomerIdentifier",
                b.customer_identifier,
                f"{where}: customer_identifier",
                problems,
            )
            holder = self._identifier_owners.setdefault(b.customer_identifier, b.account_id)
            if holder != b.account_id or not b.customer_identifier:
                problems.append(
                    f"{where}: customer_identifier: {b.customer_identifier!r} is empty or "
                    f"already used by buyer {holder}"
                )
        self._claim_keys(where, b.account_id, b.access_keys, problems)
        return Buyer(b.account_id, b.customer_identifier, b.name, _keys(b.access_keys))

    def _agreement(
        self, i: int, a: AgreementEntry, problems: list[str | _Reference | _Later]
    ) -> Agreement:
        start, end = _epoch(a.start), _epoch(a.end)
        arn = a.license_arn or _derived_license_arn(
            a.buyer, a.product, start, self._known.license_arns
        )
        where = f"agreements[{i}] ({a.buyer} × {a.product})"
        if a.buyer not in self._buyers:
            problems.append(
                _Reference("buyers", a.buyer, f"{where}: buyer: no buyer with account_id {a.buyer}")
            )
        if a.product not in self._products:
            problems.append(
                _Reference(
                    "products",
                    a.product,
                    f"{where}: product: no product with product_code {a.product}",
                )
            )
        if LICENSE_ARN_FORMAT.fullmatch(arn) is None:
            problems.append(
                f"{where}: license_arn: must look like "
                f"arn:aws:license-manager::{LICENSE_ISSUER_ACCOUNT}:license:l-<32 hex digits>"
            )
        if arn in self._ledger_arns_unseen:
            self._ledger_arns_unseen.discard(arn)
        elif arn in self._file_arns or arn in self._known.license_arns:
            problems.append(f"{where}: license_arn: listed twice")
        else:
            self._file_arns.add(arn)
        if start is not None and end is not None and end <= start:
            problems.append(f"{where}: end: must be after start")
        entitlements = tuple(
            Entitlement(item.dimension, item.value, _epoch(item.expires)) for item in a.entitlements
        )
        if entitlements:
            check = self._entitlement_check(entitlements, a.product, where)
            if a.product in self._product_keys or "products" in self._closed:
                problems.extend(check())
            else:
                problems.append(_Later("products", check))
        if a.offer is not None:
            offer_check = self._accepted_offer_check(a, where)
            if a.offer in self._offers:
                problems.extend(offer_check())
            else:
                problems.append(
                    _Reference(
                        "offers", a.offer, f"{where}: offer: no offer with offer_id {a.offer}"
                    )
                )
                problems.append(_Later("offers", offer_check))
        return Agreement(
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

    def _entitlement_check(
        self, entitlements: tuple[Entitlement, ...], code: str, where: str
    ) -> Callable[[], list[str]]:
        """The agreement's entitlements checked (``entitlement_problems``) against its product,
        once the product is known (or known to be missing)."""

        def check() -> list[str]:
            keys = self._product_keys.get(code)
            product = None
            if keys is not None:
                product = Product(
                    product_code=code,
                    seller_account_id="",
                    kind=self._products.get(code, ProductKind.SAAS),
                    dimensions=keys.dimensions,
                    pricing_model=keys.pricing_model,
                )
            found = []
            for index, problem in entitlement_problems(entitlements, product):
                at = "entitlements" if index is None else f"entitlements[{index}]"
                found.append(f"{where}: {at}: {problem}")
            return found

        return check

    def _accepted_offer_check(self, entry: AgreementEntry, where: str) -> Callable[[], list[str]]:
        def check() -> list[str]:
            offer = self._offers.get(entry.offer or "")
            if offer is None:
                return []  # the reference's own problem says so
            found = []
            if offer.product_code != entry.product:
                found.append(f"{where}: offer: {entry.offer} is an offer of {offer.product_code}")
            if offer.buyers and entry.buyer not in offer.buyers:
                found.append(
                    f"{where}: offer: {entry.offer} is a private offer not extended to "
                    f"{entry.buyer}"
                )
            return found

        return check

    def _offer(self, i: int, o: OfferEntry, problems: list[str | _Reference | _Later]) -> Offer:
        """An offer, checked: its product and buyers exist, its terms have the Agreement API's
        shapes (``catalog.offers``)."""
        where = f"offers[{i}] ({o.offer_id})"
        if o.offer_id in self._file_offers:
            problems.append(f"{where}: offer_id: listed twice")
        self._file_offers.add(o.offer_id)
        self._offers[o.offer_id] = OfferKeys(o.product, tuple(o.buyers))
        problems.append(
            _Reference(
                "products", o.product, f"{where}: product: no product with product_code {o.product}"
            )
        )
        for j, buyer in enumerate(o.buyers):
            problems.append(
                _Reference(
                    "buyers", buyer, f"{where}: buyers[{j}]: no buyer with account_id {buyer}"
                )
            )
        if len(set(o.buyers)) != len(o.buyers):
            problems.append(f"{where}: buyers: a buyer is listed twice")
        keys = self._product_keys.get(o.product)
        term_problems: list[str] = []
        terms = check_offer_terms(
            o.terms, keys.dimensions if keys is not None else (), where, term_problems
        )
        problems.extend(term_problems)
        return Offer(o.offer_id, o.product, o.name, tuple(o.buyers), terms)


def _write_order(entry: Entry) -> int:
    """Sellers, products, buyers, offers, agreements: what an entry refers to is written
    before it."""
    if isinstance(entry, Seller):
        return 0
    if isinstance(entry, Product):
        return 1
    if isinstance(entry, Buyer):
        return 2
    return 3 if isinstance(entry, Offer) else 4


def _configuration(entry: ConfigurationEntry | None) -> AcceptedConfiguration:
    if entry is None:
        return AcceptedConfiguration()
    return AcceptedConfiguration(entry.selector, tuple(entry.dimensions.items()), entry.auto_renew)


def _buyer_twice(index: int, account: str) -> str:
    return f"buyers[{index}] ({account}): account_id: listed twice (buyers and sellers included)"


def _describe(section: str, index: int, label: str, error: Any) -> str:
    """A pydantic error as a problem: ``section[index] (label): field: message``."""
    where = f"{section}[{index}]{label}"
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    parts = [part for part in (where, field) if part]
    return f"{': '.join(parts)}: {message}"


def _label(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    for key in ("product_code", "account_id", "license_arn", "offer_id"):
        if isinstance(entry.get(key), str | int):
            return f" ({entry[key]})"
    if "buyer" in entry and "product" in entry:
        return f" ({entry['buyer']} × {entry['product']})"
    return ""


@cache
def _shape_checker(shape_name: str) -> Checker:
    return compile_shape(service_model().shape_for(shape_name))


def _wire_check(
    shape_name: str, value: str, where: str, problems: list[str | _Reference | _Later]
) -> None:
    """Check an identifier with the service model's own constraints for that shape."""
    violations = Violations()
    _shape_checker(shape_name)(value, where, violations)
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
    arn, legacy = license_arn_forms(buyer, product, str(start))
    return legacy if legacy in existing_arns else arn


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _keys(entries: Iterable[AccessKeyEntry]) -> tuple[AccessKey, ...]:
    return tuple(AccessKey(k.access_key_id, k.secret_access_key) for k in entries)
